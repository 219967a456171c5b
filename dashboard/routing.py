"""Websocket routes."""

from django.urls import path

from .consumers import FleetConsumer

websocket_urlpatterns = [path("ws/fleet/", FleetConsumer.as_asgi())]
