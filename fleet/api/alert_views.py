"""REST API for alerts: channels (admins manage them), incidents and deliveries (read-only)."""

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from fleet.alerts import channels, delivery
from fleet.api.alert_serializers import (
    AlertChannelSerializer,
    DeliverySerializer,
    IncidentSerializer,
)
from fleet.api.pagination import NewestIdFirst
from fleet.api.permissions import ActionPermission
from fleet.models import Actor, AlertChannel, Delivery, Incident


class AlertChannelViewSet(viewsets.ModelViewSet):
    """Where alerts go. Everyone with a role may list them (URLs redacted); admins manage."""

    queryset = AlertChannel.objects.all()
    serializer_class = AlertChannelSerializer
    permission_classes = [ActionPermission]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_permissions = {
        "create": "fleet.add_alertchannel",
        "partial_update": "fleet.change_alertchannel",
        "destroy": "fleet.delete_alertchannel",
        "test": "fleet.change_alertchannel",
    }

    def perform_create(self, serializer):
        channel = AlertChannel(**serializer.validated_data)
        serializer.instance = channels.create(channel, Actor.of_request(self.request, "api"))

    def perform_update(self, serializer):
        changes = dict(serializer.validated_data)
        actor = Actor.of_request(self.request, "api")
        serializer.instance = channels.update(serializer.instance, changes, actor)

    def perform_destroy(self, instance):
        channels.delete(instance, Actor.of_request(self.request, "api"))

    @extend_schema(request=None, responses=DeliverySerializer)
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a test message now and answer with how it went (sent, or the error)."""
        row = delivery.send_test(self.get_object())
        return Response(DeliverySerializer(row).data)


class IncidentFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=Incident.State.choices)
    kind = django_filters.ChoiceFilter(choices=Incident.Kind.choices)
    service = django_filters.CharFilter(field_name="service_name")
    node = django_filters.CharFilter(field_name="node_name")

    class Meta:
        model = Incident
        fields = ["state", "kind", "service", "node"]


class IncidentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Incidents, newest first: ?state=open|resolving|resolved|pending, ?kind=, ?service=."""

    queryset = Incident.objects.prefetch_related("alerts")
    serializer_class = IncidentSerializer
    filterset_class = IncidentFilter
    pagination_class = NewestIdFirst


class DeliveryFilter(django_filters.FilterSet):
    incident = django_filters.NumberFilter(
        field_name="alert__incident", min_value=0, max_value=2**63 - 1
    )
    channel = django_filters.CharFilter(field_name="channel__name")
    outcome = django_filters.ChoiceFilter(choices=Delivery.Outcome.choices)

    class Meta:
        model = Delivery
        fields = ["incident", "channel", "outcome", "alert"]


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every attempt to deliver an alert, newest first: ?incident=, ?channel=, ?outcome=."""

    queryset = Delivery.objects.select_related("alert", "channel")
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter
    pagination_class = NewestIdFirst
