"""REST API for registry credentials: admins keep them; a password is never shown again."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers, viewsets

from fleet.api.permissions import ActionPermission
from fleet.models import Actor, Registry
from fleet.services import registries
from fleet.services.fields import StrictMixin


def _checked(check, value, *args):
    try:
        return check(value, *args)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from exc


class RegistrySerializer(StrictMixin, serializers.ModelSerializer):
    """A registry's login: every pull of an image from `server` sends it."""

    server = serializers.CharField(
        max_length=255,
        help_text="As image references name it: ghcr.io, registry.example.com:5000, docker.io.",
    )
    password = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="A password or an access token: kept sealed, never shown again; leave it "
        "out of a PATCH to keep the one kept. Applies from the next pull.",
    )

    ca = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="For a registry on a private CA: its certificate(s), PEM. Each node's engine "
        'is made to trust it for this server before it pulls. "" for none.',
    )
    ca_summary = serializers.SerializerMethodField(help_text="Whom the CA names, its fingerprint.")

    class Meta:
        model = Registry
        fields = [
            "id",
            "server",
            "username",
            "password",
            "ca",
            "ca_summary",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_ca_summary(self, row) -> str:
        return registries.ca_summary(row.ca)

    def validate_ca(self, value):
        return _checked(registries.clean_ca, value)

    def validate_server(self, value):
        return _checked(registries.clean_new_server, value, self.instance)

    def validate_username(self, value):
        return _checked(registries.clean_secret, value, "user name")

    def validate_password(self, value):
        return _checked(registries.clean_secret, value, "password or token")


class RegistryViewSet(viewsets.ModelViewSet):
    """Registry credentials. Everyone with a role may list them (server and user name);
    admins add, change and remove them."""

    queryset = Registry.objects.all()
    serializer_class = RegistrySerializer
    permission_classes = [ActionPermission]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_permissions = {
        "create": "fleet.add_registry",
        "partial_update": "fleet.change_registry",
        "destroy": "fleet.delete_registry",
    }

    def perform_create(self, serializer):
        row = Registry(**serializer.validated_data)
        serializer.instance = registries.add(row, Actor.of_request(self.request, "api"))

    def perform_update(self, serializer):
        changes = dict(serializer.validated_data)
        actor = Actor.of_request(self.request, "api")
        serializer.instance = registries.change(serializer.instance, changes, actor)

    def perform_destroy(self, instance):
        registries.remove(instance, Actor.of_request(self.request, "api"))
