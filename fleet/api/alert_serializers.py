"""API representations of alert channels, incidents and deliveries.

A channel's URL can be written and replaced, never read back: responses carry its
redacted form (scheme and host).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from fleet.alerts import channels
from fleet.models import Alert, AlertChannel, Delivery, Incident
from fleet.models.alerts import Topic, default_topics
from fleet.services.fields import StrictMixin


class RedactedURLField(serializers.CharField):
    """Written whole, shown redacted."""

    def to_representation(self, value):
        from fleet import notify

        return notify.redact(value)


class AlertChannelSerializer(StrictMixin, serializers.ModelSerializer):
    """Where alerts go: an Apprise URL and the events it receives."""

    url = RedactedURLField(
        help_text="An Apprise URL (json://, mailto://, slack://, ntfy:// ...). Shown redacted; "
        "leave it out of a PATCH to keep the stored one."
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=Topic.choices),
        default=default_topics,
        help_text="What it receives; by default every problem and its end.",
    )

    class Meta:
        model = AlertChannel
        fields = ["id", "name", "url", "events", "enabled", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def validate_url(self, value):
        try:
            return channels.clean_url(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    def validate_events(self, value):
        try:
            return channels.clean_events(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


class AlertSerializer(serializers.ModelSerializer):
    """One message: an incident's opening or resolution, a notice or a test."""

    class Meta:
        model = Alert
        fields = ["id", "phase", "topics", "title", "body", "created_at"]


class IncidentSerializer(serializers.ModelSerializer):
    """One incident from its opening to its resolution, with the messages it made."""

    node = serializers.CharField(source="node_name")
    service = serializers.CharField(source="service_name")
    alerts = AlertSerializer(many=True, read_only=True)

    class Meta:
        model = Incident
        fields = [
            "id",
            "kind",
            "subject",
            "node",
            "service",
            "state",
            "summary",
            "opened_at",
            "occurrences",
            "last_seen_at",
            "clearing_since",
            "resolved_at",
            "resolution",
            "alerts",
        ]


class DeliverySerializer(serializers.ModelSerializer):
    """One attempt to send one alert to one channel."""

    channel = serializers.CharField(source="channel.name")
    incident = serializers.IntegerField(source="alert.incident_id", allow_null=True)
    title = serializers.CharField(source="alert.title")
    phase = serializers.CharField(source="alert.phase")

    class Meta:
        model = Delivery
        fields = [
            "id",
            "alert",
            "incident",
            "phase",
            "title",
            "channel",
            "attempt",
            "outcome",
            "final",
            "error",
            "started_at",
            "finished_at",
        ]
