"""What every dashboard page's template needs to know besides its own view's context."""

from dashboard.routing import CONSOLE_SOCKET, LIVE_SOCKET
from fleet.console.sessions import COMMANDS


def live_socket(request):
    """The paths of the live and console sockets, for the pages' scripts to connect to, and
    the commands a console offers."""
    return {
        "live_socket": "/" + LIVE_SOCKET,
        "console_socket": "/" + CONSOLE_SOCKET,
        "console_commands": COMMANDS,
    }
