"""What really runs: container listings of the nodes -> Replica rows, and orphan detection.

Ownership lives on the nodes: every container Fleet makes carries the labels
fleet.service, fleet.slot, fleet.deployment and fleet.replica, so a restarted
worker can always find what it (or a worker that died) created.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import close_old_connections, connections
from django.utils import timezone

from . import engine
from .models import Event, EventKind, Node, Replica

log = logging.getLogger(__name__)

# A container younger than this whose row is still pending may be one a worker is
# creating right now: it is not an orphan yet.
CREATION_GRACE = timedelta(seconds=90)
SERVICE_LABEL = "fleet.service"
REPLICA_LABEL = "fleet.replica"


def list_on(nodes, label):
    """{node id: [ObservedContainer]} for every reachable node; unreachable ones are left out."""

    def one(node):
        try:
            return node.pk, engine.list_containers(node, label)
        except engine.EngineError as exc:
            log.info("cannot list containers on %s: %s", node, exc)
            return node.pk, None

    reachable = [n for n in nodes if n.status != Node.Status.DOWN]
    if not reachable:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(reachable), 32)) as pool:
        return {pk: found for pk, found in pool.map(one, reachable) if found is not None}


def _apply(replica, seen, now):
    """Copy what Docker says onto the row; return the Event kind this change deserves, if any."""
    was_serving, old_state, old_health = replica.serving, replica.state, replica.health
    if seen is None:
        replica.state = Replica.State.MISSING
        replica.error = replica.error or "its container is gone"
    elif seen.state in ("running", "paused", "restarting"):
        replica.state = Replica.State.RUNNING
        replica.health = seen.health
        replica.host_ports = seen.host_ports
        replica.started_at = replica.started_at or now
    elif seen.state in ("exited", "dead"):
        replica.state = Replica.State.EXITED
        replica.exit_code = seen.exit_code
        replica.finished_at = replica.finished_at or now
    if replica.serving and not was_serving:
        replica.ready_at = now
    elif not replica.serving:
        replica.ready_at = None
    if (old_state, old_health) == (replica.state, replica.health):
        return None
    if replica.state == Replica.State.EXITED and old_state == Replica.State.RUNNING:
        return EventKind.REPLICA_DIED
    if replica.health == Replica.Health.UNHEALTHY:
        return EventKind.REPLICA_UNHEALTHY
    if replica.serving and not was_serving:
        return EventKind.REPLICA_STARTED
    return None


def sync_replicas(service, replicas, nodes):
    """Bring the service's Replica rows in line with its containers; return orphan containers.

    `nodes` maps node id -> Node. A replica on a down node keeps its row (its
    container may come back with the node) but is marked missing so it is
    replaced elsewhere. Returns [(node, container id)] of this service's
    containers that no replica claims.
    """
    now = timezone.now()
    listings = list_on(list(nodes.values()), f"{SERVICE_LABEL}={service.name}")
    by_id = {c.id: (pk, c) for pk, found in listings.items() for c in found}
    claimed = {r.container_id for r in replicas if r.container_id}
    for replica in replicas:
        node = nodes.get(replica.node_id)
        if replica.state == Replica.State.FAILED:
            continue
        if node is None or node.status == Node.Status.DOWN:
            _mark_lost(replica, f"node {node or replica.node_id} is down or removed")
            continue
        if replica.node_id not in listings:
            continue  # the node did not answer this time: unknown, not missing
        if not replica.container_id:
            adopted = _adoptable(listings[replica.node_id], replica)
            if adopted is None:
                continue  # not created yet, or being created right now
            replica.container_id, replica.container_name = adopted.id, adopted.name
            claimed.add(adopted.id)
        seen = by_id.get(replica.container_id, (None, None))[1]
        kind = _apply(replica, seen, now)
        replica.save()
        if kind:
            detail = f"exit code {replica.exit_code}" if kind == EventKind.REPLICA_DIED else ""
            Event.objects.record(
                kind,
                service=service,
                node=node,
                new=replica.state if kind != EventKind.REPLICA_UNHEALTHY else "unhealthy",
                reason=f"slot {replica.slot} {detail or replica.error}".strip(),
            )
    pending = {str(r.pk) for r in replicas if r.state == Replica.State.PENDING}
    return [
        (nodes[pk], c.id)
        for c_id, (pk, c) in by_id.items()
        if c_id not in claimed and not in_creation(c, pending, now)
    ]


def _mark_lost(replica, reason):
    if replica.state != Replica.State.MISSING:
        replica.state = Replica.State.MISSING
        replica.error = reason
        replica.ready_at = None
        replica.save()


def _adoptable(containers, replica):
    for container in containers:
        if container.labels.get(REPLICA_LABEL) == str(replica.pk):
            return container
    return None


def in_creation(container, pending_ids, now):
    young = now.timestamp() - container.created < CREATION_GRACE.total_seconds()
    return young and container.labels.get(REPLICA_LABEL) in pending_ids


def close_thread_connections(func):
    """Wrap a function run in a worker thread so its database connection is closed after."""

    def wrapper(*args, **kwargs):
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            connections.close_all()

    return wrapper
