"""API representations of services, deployments and replicas."""

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from fleet.access.sealing import masked
from fleet.models import Deployment, Replica, Service
from fleet.services.image_updates import status_of
from fleet.services.spec import (
    HealthcheckSerializer,
    PortSerializer,
    ResourcesSerializer,
    UpdatePolicySerializer,
    shown,
)


class DeploymentSerializer(serializers.ModelSerializer):
    """A revision and its rollout."""

    service = serializers.CharField(source="service.name")
    spec = serializers.SerializerMethodField()

    class Meta:
        model = Deployment
        fields = [
            "id",
            "service",
            "revision",
            "status",
            "progress",
            "reason",
            "actor",
            "via",
            "created_at",
            "started_at",
            "finished_at",
            "spec",
        ]

    def get_spec(self, deployment) -> dict:
        """The revision's spec, secret values masked."""
        return shown(deployment.spec)


class DeploymentSummarySerializer(serializers.ModelSerializer):
    """The current deployment, as the service shows it."""

    class Meta:
        model = Deployment
        fields = ["id", "revision", "status", "progress", "reason", "created_at"]


class ImageUpdateSerializer(serializers.Serializer):
    """The last image check of a service: is there a newer digest of its tag, since when."""

    image = serializers.CharField(help_text="The tag checked (the spec's image, pin removed).")
    outcome = serializers.ChoiceField(
        choices=["", "up_to_date", "update_available", "unknown", "failed"],
        help_text='The last check\'s outcome; "" when it was never checked.',
    )
    error = serializers.CharField(help_text="Why the last check failed, or what it could not see.")
    checked_at = serializers.DateTimeField(allow_null=True)
    requested_at = serializers.DateTimeField(
        allow_null=True, help_text="When a check was asked for that has not finished yet."
    )
    registry_digest = serializers.CharField()
    running_digests = serializers.ListField(child=serializers.CharField())
    update_available = serializers.BooleanField()
    update_digest = serializers.CharField(help_text='The newer digest on offer, or "".')
    update_short = serializers.CharField(help_text="The same, as people read it.")
    update_seen_at = serializers.DateTimeField(
        allow_null=True, help_text="When the registry was first seen with it: the update's age."
    )
    auto = serializers.BooleanField(help_text="The spec's update.auto.")


class ImageUpdateRequestSerializer(serializers.Serializer):
    """Deploy the update on offer; name its digest to be sure it is the one you saw."""

    digest = serializers.RegexField(r"^sha256:[0-9a-f]{64}$", required=False)

    def to_internal_value(self, data):
        if isinstance(data, dict) and (unknown := set(data) - set(self.fields)):
            raise serializers.ValidationError({str(k): ["Unknown field."] for k in unknown})
        return super().to_internal_value(data)


class ServiceSerializer(serializers.ModelSerializer):
    """A service: its spec, desired and observed counts, status and current deployment."""

    running_replicas = serializers.IntegerField(read_only=True)
    healthy_replicas = serializers.IntegerField(read_only=True)
    status = serializers.CharField(read_only=True)
    current_deployment = DeploymentSummarySerializer(read_only=True)
    image = serializers.CharField(source="spec.image")
    command = serializers.ListField(source="spec.command", child=serializers.CharField())
    env = serializers.DictField(source="spec.env", child=serializers.CharField())
    secrets = serializers.SerializerMethodField()
    ports = PortSerializer(source="spec.ports", many=True)
    healthcheck = HealthcheckSerializer(source="spec.healthcheck", allow_null=True)
    constraints = serializers.ListField(source="spec.constraints", child=serializers.CharField())
    resources = ResourcesSerializer(source="spec.resources")
    restart_policy = serializers.CharField(source="spec.restart_policy")
    update = UpdatePolicySerializer(source="spec.update")
    image_update = serializers.SerializerMethodField()

    class Meta:
        model = Service
        fields = [
            "name",
            "replicas",
            "running_replicas",
            "healthy_replicas",
            "status",
            "current_deployment",
            "image",
            "command",
            "env",
            "secrets",
            "ports",
            "healthcheck",
            "constraints",
            "resources",
            "restart_policy",
            "update",
            "image_update",
            "created_at",
        ]
        read_only_fields = fields

    def get_secrets(self, service) -> dict[str, str]:
        """Names of the secret variables; the values are never sent."""
        return masked(service.spec.get("secrets") or {})

    @extend_schema_field(ImageUpdateSerializer)
    def get_image_update(self, service):
        """The last image check: whether a newer digest of the image's tag is on offer."""
        return ImageUpdateSerializer(status_of(service)).data


class ReplicaSerializer(serializers.ModelSerializer):
    """One replica: slot, node, container and what Docker says of it."""

    node = serializers.CharField(source="node.name", default=None)
    revision = serializers.IntegerField(source="deployment.revision")

    class Meta:
        model = Replica
        fields = [
            "slot",
            "node",
            "container_id",
            "state",
            "health",
            "started_at",
            "revision",
            "exit_code",
            "error",
            "host_ports",
            "restarts",
        ]


class ScaleSerializer(serializers.Serializer):
    """The replica count to converge to."""

    replicas = serializers.IntegerField(min_value=0)

    def validate_replicas(self, value):
        if value > settings.FLEET_MAX_REPLICAS:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {settings.FLEET_MAX_REPLICAS} "
                "(FLEET_MAX_REPLICAS)."
            )
        return value
