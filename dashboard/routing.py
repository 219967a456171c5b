"""Websocket routes."""

from django.urls import path

from .consumers import FleetConsumer

# Pages learn it from the template context (dashboard.context), never from a literal.
LIVE_SOCKET = "ws/fleet/"

websocket_urlpatterns = [path(LIVE_SOCKET, FleetConsumer.as_asgi())]
