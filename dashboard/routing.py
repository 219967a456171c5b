"""Websocket routes. The live feed at /ws/fleet/ joins here; until then none is open."""

websocket_urlpatterns = []
