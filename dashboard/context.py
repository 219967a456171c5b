"""What every dashboard page's template needs to know besides its own view's context."""

from .routing import LIVE_SOCKET


def live_socket(request):
    """The path of the live socket, for the page's script to connect to."""
    return {"live_socket": "/" + LIVE_SOCKET}
