"""API representations of nodes and events."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from fleet.models import Event, Node
from fleet.models.nodes import HOST_FACTS
from fleet.services.fields import StrictMixin


class NodeSerializer(StrictMixin, serializers.ModelSerializer):
    """A node as the API shows it; TLS material and the SSH key can be written but are never
    read back (the SSH host key, public, is)."""

    insecure = serializers.BooleanField(
        read_only=True,
        help_text="Reached over plain TCP, without TLS (accepted only with FLEET_ALLOW_PLAIN_TCP).",
    )
    ssh_host_fingerprint = serializers.CharField(
        read_only=True,
        help_text="The SHA256 fingerprint of the SSH host key pinned for an ssh:// node.",
    )
    api_spoken = serializers.CharField(
        read_only=True,
        help_text="The Engine API version Fleet speaks with the engine: the lower of the "
        "engine's (api_version) and the newest Fleet knows.",
    )

    class Meta:
        model = Node
        fields = [
            "name",
            "endpoint",
            "insecure",
            "labels",
            "availability",
            "status",
            "engine_version",
            "api_version",
            "api_spoken",
            *HOST_FACTS,
            "cpus",
            "memory_bytes",
            "containers_running",
            "last_seen_at",
            "last_error",
            "unreachable_since",
            "damped",
            "held_until",
            "hold_reason",
            "tls_ca",
            "tls_cert",
            "tls_key",
            "ssh_key",
            "ssh_host_key",
            "ssh_host_fingerprint",
        ]
        read_only_fields = [
            "status",
            "engine_version",
            "api_version",
            *HOST_FACTS,
            "cpus",
            "memory_bytes",
            "containers_running",
            "last_seen_at",
            "last_error",
            "unreachable_since",
            "damped",
            "held_until",
            "hold_reason",
        ]
        extra_kwargs = {
            "tls_ca": {"write_only": True},
            "tls_cert": {"write_only": True},
            "tls_key": {"write_only": True, "style": {"input_type": "password"}},
            "ssh_key": {"write_only": True, "style": {"input_type": "password"}},
        }

    def validate_name(self, value):
        if self.instance is not None and value != self.instance.name:
            raise serializers.ValidationError("A node's name cannot be changed.")
        return value

    def validate(self, attrs):
        candidate = Node(
            **{f.name: getattr(self.instance, f.name) for f in Node._meta.concrete_fields}
            if self.instance
            else {}
        )
        for field, value in attrs.items():
            setattr(candidate, field, value)
        try:
            # Whole, stored fields too: a stored key that can no longer be opened is a 400.
            candidate.full_clean(validate_unique=False, validate_constraints=False)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs


class EventSerializer(serializers.ModelSerializer):
    """One recorded event."""

    node = serializers.CharField(source="node_name")
    service = serializers.CharField(source="service_name")

    class Meta:
        model = Event
        fields = [
            "id",
            "created_at",
            "kind",
            "node",
            "service",
            "old",
            "new",
            "reason",
            "actor",
            "via",
            "address",
        ]
