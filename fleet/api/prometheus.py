"""GET /metrics: the fleet for a Prometheus scrape, with an API token only."""

from django.http import HttpResponse
from knox.auth import TokenAuthentication
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.views import APIView

from fleet.access.roles import READ_FLEET
from fleet.metrics import prometheus


class ReadsFleetByToken(BasePermission):
    """A token of a user whose role may read the fleet."""

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.has_perms(READ_FLEET))


class PlainText(BaseRenderer):
    """Lets a scraper that accepts only text/plain be answered (its errors in plain text)."""

    media_type = "text/plain"
    format = "txt"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and "detail" in data:
            return str(data["detail"]).encode()
        return str(data).encode()


class PrometheusMetricsView(APIView):
    """The fleet in the Prometheus text format: `Authorization: Token ...` (Prometheus'
    `authorization: {type: Token, credentials: ...}`); never anonymous, never by session."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [ReadsFleetByToken]
    renderer_classes = [JSONRenderer, PlainText]
    schema = None  # text for Prometheus, not part of the JSON API

    def get(self, request):
        return HttpResponse(prometheus.exposition(), content_type=CONTENT_TYPE_LATEST)
