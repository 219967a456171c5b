"""URLs of the REST API, mounted under /api/."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from fleet.api.alert_views import AlertChannelViewSet, DeliveryViewSet, IncidentViewSet
from fleet.api.auth import ObtainToken, TokenViewSet
from fleet.api.ingress_views import ServiceIngressView
from fleet.api.metrics_views import MetricThresholdViewSet, NodeMetricsView, ServiceMetricsView
from fleet.api.registry_views import RegistryViewSet
from fleet.api.service_views import DeploymentViewSet, ServiceViewSet
from fleet.api.views import EventViewSet, NodeViewSet
from fleet.api.webhooks import WebhookViewSet
from fleet.models.validation import NAME_IN_URL


class OptionalSlashRouter(SimpleRouter):
    """Routes that answer with or without a trailing slash: /api/nodes/x/drain and .../drain/."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("nodes", NodeViewSet)
router.register("events", EventViewSet)
router.register("services", ServiceViewSet, basename="service")
router.register("deployments", DeploymentViewSet)
router.register("auth/tokens", TokenViewSet, basename="token")
router.register("alert-channels", AlertChannelViewSet)
router.register("incidents", IncidentViewSet)
router.register("deliveries", DeliveryViewSet)
router.register(rf"services/(?P<name>{NAME_IN_URL})/webhooks", WebhookViewSet, basename="webhook")
router.register("metric-thresholds", MetricThresholdViewSet)
router.register("registries", RegistryViewSet)

urlpatterns = [
    path("auth/token/", ObtainToken.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file, and our template takes the page's
    # inline style out: the docs keep the same Content-Security-Policy as every page.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="api/swagger_ui.html"
        ),
        name="api-docs",
    ),
    path("nodes/<str:name>/metrics/", NodeMetricsView.as_view(), name="node-metrics"),
    path("services/<str:name>/metrics/", ServiceMetricsView.as_view(), name="service-metrics"),
    path("services/<str:name>/ingress/", ServiceIngressView.as_view(), name="service-ingress"),
    *router.urls,
]
