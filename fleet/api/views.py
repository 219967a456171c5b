"""REST API views: thin, every change goes through fleet.nodes."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from fleet import nodes
from fleet.api.filters import EventFilter
from fleet.api.pagination import NewestFirst
from fleet.api.permissions import ActionPermission
from fleet.api.serializers import EventSerializer, NodeSerializer
from fleet.models import Actor, Event, Node
from fleet.models.validation import NAME_IN_URL


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
        "release_hold": "fleet.change_node",
        "destroy": "fleet.delete_node",
    }

    def perform_create(self, serializer):
        node = Node(**serializer.validated_data)
        serializer.instance = nodes.register(node, Actor.of_request(self.request, "api"))

    def perform_update(self, serializer):
        nodes.update(
            serializer.instance,
            dict(serializer.validated_data),
            Actor.of_request(self.request, "api"),
        )

    def perform_destroy(self, instance):
        nodes.remove(instance, Actor.of_request(self.request, "api"))

    def _set_availability(self, request, availability):
        node = self.get_object()
        nodes.set_availability(node, availability, Actor.of_request(request, "api"))
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

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], url_path="release-hold", serializer_class=NodeSerializer)
    def release_hold(self, request, name=None):
        """Lift the hold-down of a node that flapped: it takes new replicas again at once.
        400 when the node is not held."""
        try:
            node = nodes.release_hold(self.get_object(), Actor.of_request(request, "api"))
        except nodes.NotHeld as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(self.get_serializer(node).data, status=status.HTTP_200_OK)


class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """What happened in the fleet, newest first."""

    queryset = Event.objects.all()
    serializer_class = EventSerializer
    filterset_class = EventFilter
    pagination_class = NewestFirst
