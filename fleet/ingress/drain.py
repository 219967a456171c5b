"""Take a replica out of the proxy before it stops, and wait for its requests to finish.

Called with the replica's row already gone (so that no sync puts it back), before its
container is stopped: the proxy sends it nothing new (`drain`), and its requests in
flight (HAProxy's `scur` for the server) are waited for, for at most the service's
`update.drain` seconds. Then it leaves the proxy, and only then does the container stop.
"""

import logging
import time

from fleet.ingress import haproxy, routes
from fleet.models import Service

log = logging.getLogger(__name__)

POLL = 0.05
DEFAULT_DRAIN = 10


def drain(replica, container_id):
    """Drain the replica's server for `container_id`; return the seconds it took."""
    if not container_id:
        return 0.0
    found = Service.objects.filter(pk=replica.service_id).values_list(
        "current_deployment__spec", flat=True
    )
    limit = limit_of(next(iter(found), None) or {})
    if not limit:
        return 0.0
    backend = routes.backend_name(replica.service.name)
    name = routes.server_name(replica.pk, container_id)
    began = time.monotonic()
    try:
        if name not in haproxy.servers_state(backend):
            return 0.0
        haproxy.change(f"set server {backend}/{name} state drain")
        while in_flight(backend, name) and time.monotonic() - began < limit:
            time.sleep(POLL)
        haproxy.change(f"set server {backend}/{name} state maint")
        haproxy.change(f"del server {backend}/{name}", ok=("Server deleted", "No such server"))
    except (haproxy.Unavailable, haproxy.NoBackend, haproxy.Refused) as exc:
        log.info("drain of %s/%s cut short: %s", backend, name, exc)
    took = time.monotonic() - began
    log.info("drained %s/%s in %.2f s", backend, name, took)
    return took


def limit_of(spec):
    """How long a replica of a service with this spec may drain: 0 without an ingress."""
    if not spec.get("ingress"):
        return 0
    return (spec.get("update") or {}).get("drain", DEFAULT_DRAIN)


def in_flight(backend, name):
    """Requests the proxy has on the server now (0 once it is gone)."""
    for row in haproxy.stats(backend):
        if row["svname"] == name:
            return int(row.get("scur") or 0)
    return 0
