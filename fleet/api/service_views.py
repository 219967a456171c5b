"""REST API for services and deployments: thin, every change goes through fleet.services."""

from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from fleet import services
from fleet.api.filters import DeploymentFilter
from fleet.api.pagination import NewestFirst
from fleet.api.permissions import ActionPermission
from fleet.api.service_serializers import (
    DeploymentSerializer,
    ImageUpdateRequestSerializer,
    ImageUpdateSerializer,
    ReplicaSerializer,
    ScaleSerializer,
    ServiceSerializer,
)
from fleet.models import Actor, Deployment, Service
from fleet.models.validation import NAME_IN_URL
from fleet.services import image_updates
from fleet.services.spec import SPEC_FIELDS, ServiceSpecSerializer, merge


def json_object(data):
    """The request body when it is an object; anything else (a list, a number, null) is a 400."""
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["Send a JSON object."]})
    return data


def validated_spec(service, changes):
    """A client's changes to the service's spec, once the spec with them validates whole;
    a 400 naming the fields otherwise. Returns (the spec changes, whether there are any):
    services.deploy_changes merges them again, under the row lock."""
    json_object(changes)
    errors = {}
    if "name" in changes and changes["name"] != service.name:
        errors["name"] = ["A service's name cannot be changed."]
    unknown = set(changes) - set(SPEC_FIELDS) - {"name", "replicas"}
    errors.update({key: ["Unknown field."] for key in unknown})
    if errors:
        raise ValidationError(errors)
    spec = {k: v for k, v in changes.items() if k in SPEC_FIELDS}
    merged = merge(service.spec, spec) | {"name": service.name, "replicas": service.replicas}
    serializer = ServiceSpecSerializer(data=merged)
    serializer.is_valid(raise_exception=True)
    return spec, bool(spec)


def conflict(exc):
    return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)


class ServiceViewSet(viewsets.ModelViewSet):
    """Services: an image run as N replicas across nodes."""

    serializer_class = ServiceSerializer
    lookup_field = "name"
    lookup_value_regex = NAME_IN_URL
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    permission_classes = [ActionPermission]
    action_permissions = {
        "create": "fleet.add_service",
        "partial_update": "fleet.change_service",
        "scale": "fleet.change_service",
        "deploy": "fleet.change_service",
        "rollback": "fleet.change_service",
        "restart_replica": "fleet.change_service",
        "image_check": "fleet.change_service",
        "image_update": "fleet.change_service",
        "destroy": "fleet.delete_service",
    }

    def get_queryset(self):
        return Service.objects.with_counts()

    def fresh(self, service, code):
        service = self.get_queryset().get(pk=service.pk)
        return Response(ServiceSerializer(service).data, status=code)

    @extend_schema(request=ServiceSpecSerializer, responses={201: ServiceSerializer})
    def create(self, request, *args, **kwargs):
        spec = ServiceSpecSerializer(data=request.data)
        spec.is_valid(raise_exception=True)
        if Service.objects.filter(name=spec.validated_data["name"]).exists():
            raise ValidationError({"name": ["A service with this name already exists."]})
        try:
            service = services.create(spec.validated_data, Actor.of_request(request, "api"))
        except IntegrityError as exc:
            raise ValidationError({"name": ["A service with this name already exists."]}) from exc
        return self.fresh(service, status.HTTP_201_CREATED)

    @extend_schema(request=ServiceSpecSerializer(partial=True), responses={202: ServiceSerializer})
    def partial_update(self, request, *args, **kwargs):
        service = self.get_object()
        replicas = None
        if "replicas" in json_object(request.data):
            scale = ScaleSerializer(data={"replicas": request.data["replicas"]})
            scale.is_valid(raise_exception=True)
            replicas = scale.validated_data["replicas"]
        changes, changed = validated_spec(service, request.data)
        try:
            if changed:
                services.deploy_changes(service, changes, Actor.of_request(request, "api"))
            if replicas is not None:
                services.scale(service, replicas, Actor.of_request(request, "api"))
        except services.ServiceError as exc:
            return conflict(exc)
        return self.fresh(service, status.HTTP_202_ACCEPTED)

    @extend_schema(responses={202: ServiceSerializer})
    def destroy(self, request, *args, **kwargs):
        service = self.get_object()
        try:
            # Read the answer before the commit queues the work: a worker may remove a
            # service without replicas before a read after the commit could find it.
            with transaction.atomic():
                services.delete(service, Actor.of_request(request, "api"))
                return self.fresh(service, status.HTTP_202_ACCEPTED)
        except services.ServiceError as exc:
            return conflict(exc)

    @extend_schema(request=ScaleSerializer, responses={202: ServiceSerializer})
    @action(detail=True, methods=["post"], serializer_class=ScaleSerializer)
    def scale(self, request, name=None):
        """Converge to {"replicas": n}."""
        service = self.get_object()
        scale = ScaleSerializer(data=request.data)
        scale.is_valid(raise_exception=True)
        try:
            services.scale(
                service, scale.validated_data["replicas"], Actor.of_request(request, "api")
            )
        except services.ServiceError as exc:
            return conflict(exc)
        return self.fresh(service, status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=ServiceSpecSerializer(partial=True),
        responses={200: DeploymentSerializer, 202: DeploymentSerializer},
    )
    @action(detail=True, methods=["post"], serializer_class=DeploymentSerializer)
    def deploy(self, request, name=None):
        """Roll out a new revision from a partial spec such as {"image": ...}."""
        service = self.get_object()
        if "replicas" in json_object(request.data):
            raise ValidationError({"replicas": ["Use the scale action to change the count."]})
        changes, _ = validated_spec(service, request.data)
        try:
            actor = Actor.of_request(request, "api")
            deployment, created = services.deploy_changes(service, changes, actor)
        except services.ServiceError as exc:
            return conflict(exc)
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        return Response(DeploymentSerializer(deployment).data, status=code)

    @extend_schema(request=None, responses={202: DeploymentSerializer})
    @action(detail=True, methods=["post"], serializer_class=DeploymentSerializer)
    def rollback(self, request, name=None):
        """Go back to the newest earlier revision that succeeded."""
        service = self.get_object()
        try:
            deployment = services.rollback(service, Actor.of_request(request, "api"))
        except services.ServiceError as exc:
            return conflict(exc)
        return Response(DeploymentSerializer(deployment).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: ServiceSerializer})
    @action(
        detail=True,
        methods=["post"],
        url_path=r"replicas/(?P<slot>[0-9]+)/restart",
        serializer_class=ReplicaSerializer,
    )
    def restart_replica(self, request, name=None, slot=None):
        """Replace the container of one slot with a fresh one."""
        service = self.get_object()
        try:
            services.restart_replica(service, int(slot), Actor.of_request(request, "api"))
        except services.ServiceError as exc:
            return Response({"slot": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return self.fresh(service, status.HTTP_202_ACCEPTED)

    @extend_schema(methods=["GET"], responses=ImageUpdateSerializer)
    @extend_schema(methods=["POST"], request=None, responses={202: ImageUpdateSerializer})
    @action(
        detail=True,
        methods=["get", "post"],
        url_path="image-check",
        serializer_class=ImageUpdateSerializer,
    )
    def image_check(self, request, name=None):
        """The last image check (GET); check the registry for a newer digest now (POST)."""
        service = self.get_object()
        if request.method == "POST":
            try:
                image_updates.request_check(service)
            except services.ServiceError as exc:
                return conflict(exc)
            service = self.get_queryset().get(pk=service.pk)
        code = status.HTTP_202_ACCEPTED if request.method == "POST" else status.HTTP_200_OK
        return Response(ImageUpdateSerializer(image_updates.status_of(service)).data, status=code)

    @extend_schema(request=ImageUpdateRequestSerializer, responses={202: DeploymentSerializer})
    @action(
        detail=True,
        methods=["post"],
        url_path="image-update",
        serializer_class=ImageUpdateRequestSerializer,
    )
    def image_update(self, request, name=None):
        """Deploy the newer digest the last check found, pinned, by the normal rollout."""
        service = self.get_object()
        body = ImageUpdateRequestSerializer(data=json_object(request.data))
        body.is_valid(raise_exception=True)
        try:
            actor = Actor.of_request(request, "api")
            deployment, _ = image_updates.deploy_update(
                service, actor, body.validated_data.get("digest")
            )
        except services.ServiceError as exc:
            return conflict(exc)
        return Response(DeploymentSerializer(deployment).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=ReplicaSerializer(many=True))
    @action(detail=True, methods=["get"], serializer_class=ReplicaSerializer, pagination_class=None)
    def replicas(self, request, name=None):
        """Where each replica runs and how it is doing."""
        service = self.get_object()
        rows = service.replica_set.select_related("node", "deployment").order_by(
            "slot", "-deployment__revision"
        )
        return Response(ReplicaSerializer(rows, many=True).data)


class DeploymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Revisions of services and how their rollouts went."""

    queryset = Deployment.objects.select_related("service")
    serializer_class = DeploymentSerializer
    filterset_class = DeploymentFilter
    # Every revision carries its whole spec: a service deployed often makes a long list.
    pagination_class = NewestFirst
