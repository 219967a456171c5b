"""URLs of the REST API, mounted under /api/."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import SimpleRouter

from .service_views import DeploymentViewSet, ServiceViewSet
from .views import EventViewSet, NodeViewSet


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

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    *router.urls,
]
