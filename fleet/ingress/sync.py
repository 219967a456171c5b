"""Bring the proxy in line with the database: one service's servers and route at a time.

Idempotent: the servers a service should have are computed from its replica rows and
compared with what HAProxy reports, so that any process may call it, as often as it
likes, and a call that was missed is made good by the next. The state changes that
drive the dashboard (a replica starting, turning healthy, dying, its node going down)
call changed(), which syncs once the change is committed; the reconcile calls
sync_all() as the safety net.
"""

import logging

from django.db import transaction

from fleet import live
from fleet.ingress import config, haproxy, routes, servers
from fleet.ingress.config import CHECK
from fleet.models import Service

log = logging.getLogger(__name__)


def changed(replica):
    """A replica's state changed: sync its service once that is committed."""
    service_id = replica.service_id
    transaction.on_commit(lambda: sync_id(service_id))


def sync_id(service_id):
    """sync() by id, for the hooks: whatever goes wrong is logged, never raised into the
    code that recorded the change (the next change or the reconcile syncs again)."""
    try:
        service = Service.objects.select_related("current_deployment").filter(pk=service_id)
        if (found := service.first()) is not None:
            sync(found)
    except Exception:
        log.exception("ingress not synced for service %s", service_id)


def sync(service):
    """Make the proxy's backend for the service hold exactly its serving replicas;
    a proxy that is away is left for the next call."""
    spec = service.current_deployment.spec if service.current_deployment else {}
    ingress = spec.get("ingress")
    backend = routes.backend_name(service.name)
    try:
        present = haproxy.servers_state(backend)
        wanted = servers.desired_servers(service, ingress) if ingress else {}
        if _apply(backend, present, wanted) + _route(backend, ingress):
            live.broadcast("service", service.name)  # its page shows the proxy's view
    except haproxy.NoBackend:
        if ingress:
            _reload_for(service)
    except haproxy.Unavailable as exc:
        log.debug("ingress not synced for %s: %s", service.name, exc)
    except haproxy.Refused as exc:
        log.warning("ingress not synced for %s: %s", service.name, exc)


def _reload_for(service):
    """A new backend comes with its servers, by a reload of a rewritten configuration."""
    try:
        config.apply(servers.current_backends)
    except (RuntimeError, OSError, haproxy.Unavailable) as exc:
        # A configuration HAProxy refused, a full disk: the next sync tries again.
        log.warning("ingress configuration not applied for %s: %s", service.name, exc)
    live.broadcast("service", service.name)


def _apply(backend, present, wanted):
    """Add, enable and remove servers; return how many changes were made."""
    changes = 0
    for name, server in wanted.items():
        now = present.get(name)
        if now is not None and (now.addr, now.port) != (server.addr, server.port):
            _remove(backend, name)
            now = None
        if now is None:
            add(backend, server)
            changes += 1
        elif now.in_maintenance:
            haproxy.change(f"set server {backend}/{name} state ready")
            changes += 1
    for name, now in present.items():
        if name not in wanted and not now.draining:
            _remove(backend, name)
            changes += 1
    return changes


def add(backend, server):
    haproxy.change(
        f"add server {backend}/{server.name} {server.addr}:{server.port} {CHECK}",
        ok=("New server registered", "Already exists"),  # another process was first
    )
    haproxy.change(f"enable health {backend}/{server.name}")
    # Docker's own check already found it healthy: it takes requests at once.
    haproxy.change(f"set server {backend}/{server.name} health up")
    haproxy.change(f"set server {backend}/{server.name} state ready")


def _remove(backend, name):
    """Stop sending it requests; delete it once none is left on it (else a later sync will)."""
    haproxy.change(f"set server {backend}/{name} state maint")
    try:
        haproxy.change(f"del server {backend}/{name}", ok=("Server deleted", "No such server"))
    except haproxy.Refused as exc:
        log.info("kept %s/%s for now: %s", backend, name, exc)


def _route(backend, ingress):
    """The route map holds this backend's route, and only it; return how many changes."""
    changes = 0
    _, routes_path = config.paths()
    entries = haproxy.show_map(routes_path)
    key = routes.route_key(ingress) if ingress else None
    for old, target in entries.items():
        if target == backend and old != key:
            haproxy.change(f"del map {routes_path} {old}")
            changes += 1
    if key and entries.get(key) != backend:
        verb = "set" if key in entries else "add"
        haproxy.change(f"{verb} map {routes_path} {key} {backend}")
        changes += 1
    return changes


def sync_all():
    """Every routed service, and the routes of services that are gone (the safety net).
    Nothing raises: a proxy that is away or refuses is logged and left for the next round."""
    if not haproxy.running():
        return
    try:
        config.apply(servers.current_backends)
        _, routes_path = config.paths()
        entries = haproxy.show_map(routes_path)
        known = {routes.backend_name(s.name) for s, _ in routes.routed()}
        for key, backend in entries.items():
            if backend not in known:
                haproxy.change(f"del map {routes_path} {key}")
    except haproxy.Unavailable:
        return
    except (RuntimeError, OSError, haproxy.Refused) as exc:
        log.warning("ingress configuration not applied: %s", exc)
    for service, _ in routes.routed():
        sync(service)
        # Request rates change without any state change: the page gets them each round.
        live.broadcast("service", service.name)
