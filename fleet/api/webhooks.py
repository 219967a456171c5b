"""A service's deploy webhooks in the API: listed (never their secrets), made and rotated
(the secret URL shown once), revoked. Reading needs a role; changing, what deploying needs."""

from django.db import IntegrityError
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from fleet.api.permissions import ActionPermission
from fleet.models import Actor, Service, Webhook
from fleet.services import webhooks

CHANGE = "fleet.change_service"  # who may deploy a service may give CI a way to


class WebhookSerializer(serializers.ModelSerializer):
    """A webhook as anyone with a role sees it: never its secret."""

    service = serializers.CharField(source="service.name", read_only=True)

    class Meta:
        model = Webhook
        fields = ["id", "name", "service", "created_at", "created_by", "rotated_at", "last_used_at"]
        read_only_fields = fields


class NewWebhookSerializer(WebhookSerializer):
    """A webhook just made or rotated: the only time its secret URL is shown."""

    url = serializers.CharField(read_only=True, help_text="POST here to deploy; shown once.")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "url"]
        read_only_fields = fields


class WebhookRequestSerializer(serializers.Serializer):
    """A name for the new webhook, unique within its service."""

    name = serializers.CharField(max_length=64, help_text="What it is for, e.g. ci.")


def secret_url(request, secret):
    return request.build_absolute_uri(reverse("hook-deploy", args=[secret]))


class WebhookViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Deploy webhooks of a service: secret URLs that deploy it without a login (for CI)."""

    serializer_class = WebhookSerializer
    permission_classes = [ActionPermission]
    read_model = Service
    action_permissions = {"create": CHANGE, "rotate": CHANGE, "destroy": CHANGE}
    lookup_value_regex = "[0-9]{1,18}"
    queryset = Webhook.objects.none()  # for the schema; the real one is the service's

    def service(self):
        return get_object_or_404(Service, name=self.kwargs["name"])

    def get_queryset(self):
        return Webhook.objects.filter(service=self.service()).select_related("service")

    def shown_once(self, webhook, secret, code):
        webhook.url = secret_url(self.request, secret)
        return Response(NewWebhookSerializer(webhook).data, status=code)

    @extend_schema(request=WebhookRequestSerializer, responses={201: NewWebhookSerializer})
    def create(self, request, *args, **kwargs):
        service = self.service()
        data = WebhookRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        name = data.validated_data["name"]
        taken = ValidationError({"name": ["This service already has a webhook of this name."]})
        if service.webhooks.filter(name=name).exists():
            raise taken
        try:
            webhook, secret = webhooks.create(service, name, Actor.of_request(request, "api"))
        except IntegrityError as exc:
            raise taken from exc
        return self.shown_once(webhook, secret, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: NewWebhookSerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request, *args, **kwargs):
        """A new secret URL, shown once; the old one stops working at once."""
        webhook = self.get_object()
        secret = webhooks.rotate(webhook, Actor.of_request(request, "api"))
        return self.shown_once(webhook, secret, status.HTTP_200_OK)

    def perform_destroy(self, instance):
        webhooks.revoke(instance, Actor.of_request(self.request, "api"))
