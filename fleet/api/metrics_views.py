"""REST API for metrics: a node's or a service's series over a range, and threshold rules."""

import math
import time
from datetime import UTC, datetime

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.views import APIView

from fleet.api.permissions import ActionPermission
from fleet.metrics import series
from fleet.models import MetricThreshold, Node, Service
from fleet.services.fields import StrictMixin

RANGE_PARAMETERS = [
    OpenApiParameter(
        "since", str, description="ISO 8601 time or epoch seconds; default: an hour before until."
    ),
    OpenApiParameter("until", str, description="ISO 8601 time or epoch seconds; default: now."),
    OpenApiParameter(
        "step",
        int,
        description="Seconds per point; default: the range over 360, at least the sampling "
        "interval. A step under 300 s on a range of at most 6 hours within the raw retention "
        "reads raw samples, else 5-minute rollups (the step rounded up to a multiple of 300).",
    ),
]


LAST_MOMENT = 253402300799  # 9999-12-31T23:59:59Z


def _moment(value, name):
    """Epoch seconds from an ISO 8601 time (UTC when it names no zone) or from epoch seconds."""
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            parsed = parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValidationError({name: ["Not a time: give ISO 8601 or epoch seconds."]}) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
    if not (math.isfinite(seconds) and 0 <= seconds <= LAST_MOMENT):
        raise ValidationError({name: ["Not a time between 1970 and 9999."]})
    return seconds


def range_plan(query):
    """The series.Plan for a request's since, until and step; a 400 naming what is wrong."""
    unknown = set(query) - {"since", "until", "step", "format"}
    if unknown:
        raise ValidationError({key: ["Unknown parameter."] for key in sorted(unknown)})
    now = time.time()
    until = _moment(query["until"], "until") if query.get("until") else now
    since = _moment(query["since"], "since") if query.get("since") else until - 3600
    step = query.get("step") or None
    if step is not None:
        try:
            step = int(step)
        except ValueError:
            raise ValidationError({"step": ["A whole number of seconds."]}) from None
    try:
        return series.plan(
            since,
            until,
            step,
            now,
            settings.FLEET_METRICS_INTERVAL,
            settings.FLEET_METRICS_RAW_HOURS,
            settings.FLEET_METRICS_ROLLUP_DAYS,
        )
    except series.RangeError as exc:
        raise ValidationError({"non_field_errors": [str(exc)]}) from None


class ReadOnly(ActionPermission):
    """Reading needs the model's view permission; no other method is allowed to anyone."""

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS and super().has_permission(request, view)


def _values():
    return serializers.ListField(child=serializers.FloatField(allow_null=True))


class ReplicaSeriesSerializer(serializers.Serializer):
    """One replica's series: averages per step, aligned to `times`."""

    service = serializers.CharField()
    slot = serializers.IntegerField()
    cpu = _values()
    memory = _values()


class ServiceTotalSerializer(serializers.Serializer):
    """A service's replicas summed, per step."""

    cpu = _values()
    memory = _values()
    memory_limit = _values()
    net_rx = _values()
    net_tx = _values()
    blk_read = _values()
    blk_write = _values()


class NodeTotalSerializer(serializers.Serializer):
    """A node per step: what Fleet's replicas there use in sum, and its engine."""

    cpu = _values()
    memory = _values()
    memory_total = _values()
    cpus = _values()
    containers = _values()
    replicas = _values()
    disk = _values()


class SeriesSerializer(serializers.Serializer):
    """Series over a range: `times` (epoch seconds), a total and each replica."""

    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    step = serializers.IntegerField(help_text="Seconds per point.")
    source = serializers.ChoiceField(["raw", "rollup"])
    times = serializers.ListField(child=serializers.IntegerField())
    replicas = ReplicaSeriesSerializer(many=True)


class ServiceSeriesSerializer(SeriesSerializer):
    total = ServiceTotalSerializer()


class NodeSeriesSerializer(SeriesSerializer):
    total = NodeTotalSerializer()


def _answer(plan, found):
    return Response(
        {
            "since": datetime.fromtimestamp(plan.since, tz=UTC).isoformat(),
            "until": datetime.fromtimestamp(plan.until, tz=UTC).isoformat(),
            "step": plan.step,
            "source": plan.source,
            **found,
        }
    )


class NodeMetricsView(APIView):
    """A node's CPU, memory and containers over a range, and each replica's on it."""

    permission_classes = [ReadOnly]
    read_model = Node
    http_method_names = ["get", "head", "options"]

    @extend_schema(parameters=RANGE_PARAMETERS, responses={200: NodeSeriesSerializer})
    def get(self, request, name):
        node = get_object_or_404(Node, name=name)
        plan = range_plan(request.query_params)
        return _answer(plan, series.for_node(node, plan))


class ServiceMetricsView(APIView):
    """A service's CPU, memory, network and disk I/O over a range: each replica and the sum."""

    permission_classes = [ReadOnly]
    read_model = Service
    http_method_names = ["get", "head", "options"]

    @extend_schema(parameters=RANGE_PARAMETERS, responses={200: ServiceSeriesSerializer})
    def get(self, request, name):
        service = get_object_or_404(Service, name=name)
        plan = range_plan(request.query_params)
        return _answer(plan, series.for_service(service, plan))


class NameField(serializers.SlugRelatedField):
    """A related row by its name; a name with a NUL byte, which PostgreSQL cannot even be
    asked about, is refused before the lookup."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)


class MetricThresholdSerializer(StrictMixin, serializers.ModelSerializer):
    """A rule: on one service or one node, "metric above X% for Y minutes"."""

    service = NameField(
        slug_field="name", queryset=Service.objects.all(), required=False, allow_null=True
    )
    node = NameField(
        slug_field="name", queryset=Node.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = MetricThreshold
        fields = [
            "id",
            "service",
            "node",
            "metric",
            "above",
            "minutes",
            "enabled",
            "exceeded_since",
            "last_value",
        ]
        read_only_fields = ["exceeded_since", "last_value"]

    def validate(self, attrs):
        merged = {
            field: attrs.get(field, getattr(self.instance, field, None))
            for field in ("service", "node", "metric", "above")
        }
        if bool(merged["service"]) == bool(merged["node"]):
            raise ValidationError(
                {"non_field_errors": ["A threshold applies to one service or one node: name one."]}
            )
        if merged["above"] is not None and not math.isfinite(merged["above"]):
            raise ValidationError({"above": ["A finite number of percent."]})
        if merged["metric"] == MetricThreshold.Metric.MEMORY and (merged["above"] or 0) > 100:
            raise ValidationError({"above": ["Memory cannot be above 100% of its limit."]})
        return attrs


class MetricThresholdViewSet(viewsets.ModelViewSet):
    """Threshold rules; each start and stop of one is recorded as an event."""

    queryset = MetricThreshold.objects.select_related("service", "node")
    serializer_class = MetricThresholdSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    permission_classes = [ActionPermission]
    action_permissions = {
        "create": "fleet.add_metricthreshold",
        "partial_update": "fleet.change_metricthreshold",
        "destroy": "fleet.delete_metricthreshold",
    }
