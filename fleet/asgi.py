"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

from fleet.asgi_access import install as redact_webhook_secrets

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleet.settings")
django_asgi_app = get_asgi_application()
redact_webhook_secrets()  # daphne's access log would write them: they are in the path

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from dashboard.auth import TokenAuthMiddleware  # noqa: E402
from dashboard.origin import SameOriginValidator  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402
from fleet.console import orphans  # noqa: E402

# A socket's Origin must be the page's own (scheme, host and port: dashboard/origin.py);
# browsers log in with the session cookie, programs with an API token header.
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginValidator(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)

# Consoles that a web process which ended left open are ended now (fleet/console/orphans.py).
orphans.end_orphans_soon()
