"""The client's address of a request, for the login lockout and the audit trail.

Behind a reverse proxy every request comes from the proxy. X-Forwarded-For names the
client, but anyone can send that header: it is believed only when the request comes from
a proxy in FLEET_TRUSTED_PROXIES, and then read from the right, past every trusted proxy,
so that a client cannot put an address of its choice in front of what the proxy added.
"""

import ipaddress

from django.conf import settings


def _ip(text):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(ip):
    return any(ip in network for network in settings.FLEET_TRUSTED_PROXIES)


def client_address(request):
    """The address the request came from, as far as trusted proxies vouch for it; "" when
    there is none (a test client, a unix socket)."""
    ip = _ip(request.META.get("REMOTE_ADDR", ""))
    if ip is None:
        return ""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [part.strip() for part in forwarded.split(",") if part.strip()]
    while _trusted(ip) and hops:
        hop = _ip(hops.pop())
        if hop is None:
            break  # garbage: nothing further left of it is vouched for
        ip = hop
    return str(ip)
