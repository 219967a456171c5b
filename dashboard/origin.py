"""Sockets from Fleet's own pages only: an Origin is let in when it is the very origin the
socket was asked on, or one listed in CSRF_TRUSTED_ORIGINS.

A browser's origin is its scheme, host and port together, so a page served on another
port of the same host (Fleet's ingress, where any operator's service may serve a page)
is another origin, and its sockets would carry the admin's session cookie. Checking the
host alone (channels' AllowedHostsOriginValidator) let them in. A socket without an
Origin is refused too: browsers always send one, and programs can send their own.
"""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": "80", "https": "443"}


def _origin(scheme, host):
    """`scheme://host:port`, lower case, with the scheme's default port spelled out."""
    domain, port = split_domain_port(host.lower())
    if not domain or scheme not in DEFAULT_PORTS:
        return None
    return f"{scheme}://{domain}:{port or DEFAULT_PORTS[scheme]}"


def origin_of(value):
    """The origin an Origin header names, or None for one that is no origin ("null")."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.path not in ("", "/") or parts.query or parts.username or not parts.netloc:
        return None
    return _origin(parts.scheme.lower(), parts.netloc)


def own_origin(scope):
    """The origin of the page that may open this socket: the scheme the browser used (the
    proxy's X-Forwarded-Proto when FLEET_HTTPS says a TLS proxy is in front) and the Host
    it asked for, or None when that Host is not one of ALLOWED_HOSTS."""
    headers = dict(scope.get("headers", []))
    host = headers.get(b"host", b"").decode("latin1")
    if not host or not validate_host(split_domain_port(host)[0], settings.ALLOWED_HOSTS):
        return None
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    forwarded = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if forwarded:
        header = forwarded[0].removeprefix("HTTP_").replace("_", "-").lower().encode()
        if headers.get(header, b"").decode("latin1").split(",")[0].strip() == forwarded[1]:
            scheme = "https"
    return _origin(scheme, host)


def allowed(scope):
    headers = dict(scope.get("headers", []))
    origin = origin_of(headers.get(b"origin", b"").decode("latin1"))
    if origin is None:
        return False
    trusted = {origin_of(o) for o in settings.CSRF_TRUSTED_ORIGINS}
    return origin == own_origin(scope) or origin in trusted


class SameOriginValidator:
    """ASGI middleware for sockets: refuses (403 at the handshake) any other origin."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("SameOriginValidator is for websockets only")
        if allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
