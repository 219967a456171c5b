"""Websocket routes."""

from django.urls import path

from dashboard.console import ConsoleConsumer
from dashboard.consumers import FleetConsumer

# Pages learn it from the template context (dashboard.context), never from a literal.
LIVE_SOCKET = "ws/fleet/"
CONSOLE_SOCKET = "ws/exec/"

websocket_urlpatterns = [
    path(LIVE_SOCKET, FleetConsumer.as_asgi()),
    path(CONSOLE_SOCKET, ConsoleConsumer.as_asgi()),
]
