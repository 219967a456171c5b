"""REST API for a service's ingress: its address and its servers as the proxy reports them."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from fleet.api.metrics_views import ReadOnly
from fleet.ingress import status
from fleet.models import Service


class IngressServerSerializer(serializers.Serializer):
    """One server of the service's backend: a serving replica's container."""

    name = serializers.CharField()
    slot = serializers.IntegerField(allow_null=True)
    node = serializers.CharField(allow_null=True)
    address = serializers.CharField()
    state = serializers.CharField(help_text="up, down, drain or maint, as HAProxy has it.")
    check = serializers.CharField(help_text="HAProxy's last health check result.")
    check_words = serializers.CharField(help_text="The same in words, as the service page says it.")
    in_flight = serializers.IntegerField(help_text="Requests on it now.")
    request_rate = serializers.IntegerField(help_text="Requests per second, last second.")
    requests = serializers.IntegerField(help_text="Requests since it joined the proxy.")
    errors = serializers.IntegerField(help_text="5xx answers and failed connections or responses.")
    error_share = serializers.FloatField(help_text="Errors as a percentage of its requests.")


class ServiceIngressSerializer(serializers.Serializer):
    """A service's route through the ingress and its servers there."""

    host = serializers.CharField()
    path = serializers.CharField()
    port = serializers.IntegerField(help_text="The replicas' container port.")
    bind = serializers.CharField(help_text="Where the ingress listens (FLEET_INGRESS_BIND).")
    address = serializers.CharField()
    proxy = serializers.CharField(help_text="running, not answering, or no backend yet.")
    servers = IngressServerSerializer(many=True)


class ServiceIngressView(APIView):
    """A service's ingress, live from HAProxy; 404 when its spec declares none."""

    permission_classes = [ReadOnly]
    read_model = Service
    http_method_names = ["get", "head", "options"]

    @extend_schema(responses={200: ServiceIngressSerializer})
    def get(self, request, name):
        service = get_object_or_404(Service.objects.select_related("current_deployment"), name=name)
        found = status.of(service)
        if found is None:
            return Response({"detail": f"{service.name} declares no ingress."}, status=404)
        return Response(ServiceIngressSerializer(found).data)
