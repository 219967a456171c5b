"""REST API views: thin, every change goes through fleet.nodes."""

import datetime

import django_filters
from django import forms
from django.utils.dateparse import parse_datetime
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from .. import nodes
from ..models import Actor, Event, EventKind, Node
from ..validation import NAME_IN_URL
from .permissions import ActionPermission
from .serializers import EventSerializer, NodeSerializer


def actor_of(request):
    """Who is acting: the user, marked as coming through a token or a session."""
    via = "token" if request.auth is not None else "api"
    return Actor.of(request.user, via)


class NodeViewSet(viewsets.ModelViewSet):
    """Docker hosts under management."""

    queryset = Node.objects.all()
    serializer_class = NodeSerializer
    lookup_field = "name"
    lookup_value_regex = NAME_IN_URL
    permission_classes = [ActionPermission]
    action_permissions = {
        "create": "fleet.add_node",
        "update": "fleet.change_node",
        "partial_update": "fleet.change_node",
        "drain": "fleet.change_node",
        "activate": "fleet.change_node",
        "destroy": "fleet.delete_node",
    }

    def perform_create(self, serializer):
        node = Node(**serializer.validated_data)
        serializer.instance = nodes.register(node, actor_of(self.request))

    def perform_update(self, serializer):
        nodes.update(serializer.instance, dict(serializer.validated_data), actor_of(self.request))

    def perform_destroy(self, instance):
        nodes.remove(instance, actor_of(self.request))

    def _set_availability(self, request, availability):
        node = self.get_object()
        nodes.set_availability(node, availability, actor_of(request))
        return Response(self.get_serializer(node).data, status=status.HTTP_200_OK)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], serializer_class=NodeSerializer)
    def drain(self, request, name=None):
        """Stop placing work on this node."""
        return self._set_availability(request, Node.Availability.DRAIN)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], serializer_class=NodeSerializer)
    def activate(self, request, name=None):
        """Place work on this node again."""
        return self._set_availability(request, Node.Availability.ACTIVE)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, turned to UTC: Python takes offsets up to 23:59, PostgreSQL up to
    15:59, and a time it refuses would fail the query instead of the request."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None or value.tzinfo is None:
            return value
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError("Enter a time within the years 1 to 9999.") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class EventFilter(django_filters.FilterSet):
    node = django_filters.CharFilter(field_name="node_name")
    service = django_filters.CharFilter(field_name="service_name")
    kind = django_filters.ChoiceFilter(choices=EventKind.choices)
    actor = django_filters.CharFilter()
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Event
        fields = ["node", "service", "kind", "actor", "since", "until"]


class EventPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000

    def decode_cursor(self, request):
        # The cursor is the client's to send back, so its position is untrusted text: one
        # that is not a time would reach the query and fail there.
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                valid = parse_datetime(cursor.position) is not None
            except ValueError:
                valid = False
            if not valid:
                raise NotFound(self.invalid_cursor_message)
        return cursor


class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """What happened in the fleet, newest first."""

    queryset = Event.objects.all()
    serializer_class = EventSerializer
    filterset_class = EventFilter
    pagination_class = EventPagination
