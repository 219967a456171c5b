"""What really runs: container listings of the nodes -> Replica rows, and orphan detection.

Ownership lives on the nodes: every container Fleet makes carries the labels
fleet.service, fleet.slot, fleet.deployment and fleet.replica, so a restarted
worker can always find what it (or a worker that died) created.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from fleet import engine, live
from fleet.converge import wake
from fleet.engine import labels
from fleet.ingress import sync as ingress
from fleet.models import Event, EventKind, Node, Replica

log = logging.getLogger(__name__)

# A container younger than this whose row is still pending may be one a worker is
# creating right now: it is not an orphan yet.
CREATION_GRACE = timedelta(seconds=90)


def list_on(nodes, label):
    """{node id: [ObservedContainer]} for every reachable node; unreachable ones are left out."""

    def one(node):
        try:
            return node.pk, engine.list_containers(node, label)
        except engine.EngineError as exc:
            log.info("cannot list containers on %s: %s", node, exc)
            return node.pk, None

    # A node that does not answer its pings may be frozen: leave it to the health check
    # rather than let every listing wait out its timeout.
    reachable = [n for n in nodes if n.status == Node.Status.READY and not n.failures]
    if not reachable:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(reachable), 32)) as pool:
        return {pk: found for pk, found in pool.map(one, reachable) if found is not None}


LIVE = ("running", "paused", "restarting")  # what Docker calls a container that runs


def _apply(replica, seen, now):
    """Copy what Docker says onto the row; return the Event kind this change deserves, if any."""
    was_serving, old_state, old_health = replica.serving, replica.state, replica.health
    if seen is None:
        replica.state = Replica.State.MISSING
        replica.error = replica.error or "its container is gone"
    elif seen.state in LIVE:
        replica.state = Replica.State.RUNNING
        replica.health = seen.health
        if seen.host_ports is not None:  # events do not carry ports
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


def sync_replicas(service, rows, nodes):
    """Bring the service's Replica rows in line with its containers; return orphan containers.

    `nodes` maps node id -> Node. A replica on a down node keeps its row (its
    container may come back with the node) but is marked missing so it is
    replaced elsewhere. Returns [(node, container id)] of this service's
    containers that no replica claims.
    """
    now = timezone.now()
    listings = list_on(list(nodes.values()), f"{labels.SERVICE}={service.name}")
    by_id = {c.id: (pk, c) for pk, found in listings.items() for c in found}
    claimed = {r.container_id for r in rows if r.container_id}
    for replica in rows:
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
        _save_seen(replica, by_id.get(replica.container_id, (None, None))[1], node, now)
    pending = {str(r.pk) for r in rows if r.state == Replica.State.PENDING}
    return [
        (nodes[pk], c.id)
        for c_id, (pk, c) in by_id.items()
        if c_id not in claimed and not in_creation(c, pending, now)
    ]


def _shown(replica):
    """The fields whose change is worth a write and a message."""
    return (
        replica.container_id,
        replica.state,
        replica.health,
        replica.exit_code,
        replica.error,
        replica.host_ports,
        replica.ready_at,
    )


def _mark_lost(replica, reason):
    if replica.state != Replica.State.MISSING:
        replica.state = Replica.State.MISSING
        replica.error = reason
        replica.ready_at = None
        replica.save()
        live.broadcast_replica(replica)
        ingress.changed(replica)


def _adoptable(containers, replica):
    for container in containers:
        if container.labels.get(labels.REPLICA) == str(replica.pk):
            return container
    return None


def in_creation(container, pending_ids, now):
    young = now.timestamp() - container.created < CREATION_GRACE.total_seconds()
    return young and container.labels.get(labels.REPLICA) in pending_ids


def _record(replica, kind, node):
    detail = f"exit code {replica.exit_code}" if kind == EventKind.REPLICA_DIED else ""
    Event.objects.record(
        kind,
        service=replica.service,
        node=node,
        new=replica.state if kind != EventKind.REPLICA_UNHEALTHY else "unhealthy",
        reason=f"slot {replica.slot} {detail or replica.error}".strip(),
    )


OBSERVED_FIELDS = (
    "container_id",
    "container_name",
    "state",
    "health",
    "exit_code",
    "error",
    "host_ports",
    "started_at",
    "ready_at",
    "finished_at",
    "observed_at",
)


def _save_seen(replica, seen, node, seen_at):
    """Apply one observation, true at `seen_at`, to a row; save, show and record a change.

    An observation older than the one the row holds is dropped, so that a listing
    taken just before a container died cannot undo the event that reported it, nor
    a late event undo a newer listing. One exception: anything seen of the container
    of a pending row is news, however old (the row's time is when it was created).
    The write is conditional on the row being as it was read, so that a listing and
    an event applied at once cannot both record the same change (one death, one
    replica.died); the one that loses reads the row again and tries once more.

    A container seen exited never runs again (Fleet's containers have no restart
    policy; a replica restarts as a new container): a listing that still shows it
    running is older news, however late it began. The engine answers a listing from
    a view it updates a little after it sends the container's `die` event.
    """
    for _ in range(3):
        news = replica.state == Replica.State.PENDING and seen is not None
        if replica.observed_at and seen_at < replica.observed_at and not news:
            return None
        if replica.state == Replica.State.EXITED and seen is not None and seen.state in LIVE:
            return None
        before = _shown(replica)
        as_read = {"state": replica.state, "health": replica.health}
        as_read["observed_at"] = replica.observed_at
        kind = _apply(replica, seen, seen_at)
        if _shown(replica) == before:
            return None
        replica.observed_at = seen_at
        values = {name: getattr(replica, name) for name in OBSERVED_FIELDS}
        if Replica.objects.filter(pk=replica.pk, **as_read).update(**values):
            live.broadcast_replica(replica)
            ingress.changed(replica)
            wake.nudge(replica.service_id)
            if kind:
                _record(replica, kind, node)
            return kind
        try:
            replica.refresh_from_db()  # something else wrote it meanwhile
        except Replica.DoesNotExist:
            return None
    return None


def apply_listing(node, containers, listed_at):
    """Bring the rows of the replicas on one node in line with one listing of it;
    return [(replica, the Event kind its change deserves or None)] for each of them."""
    found = {c.id: c for c in containers}
    rows = Replica.objects.filter(node=node).exclude(container_id="")
    rows = rows.exclude(state=Replica.State.FAILED).select_related("service", "deployment")
    return [
        (replica, _save_seen(replica, found.get(replica.container_id), node, listed_at))
        for replica in rows
    ]


def sync_node(node):
    """Resynchronise the rows of every replica on one node from one listing of it;
    return what apply_listing() returns."""
    listed_at = timezone.now()
    return apply_listing(node, engine.list_containers(node, labels.SERVICE), listed_at)


# What a Docker event says of a container, as a listing would.
_EVENT_STATES = {"start": "running", "die": "exited", "destroy": None}


def apply_event(node, event):
    """A container event of a node -> its replica row; return (replica, Event kind) or None."""
    action = event.get("Action") or event.get("status") or ""
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    replica_id = attributes.get(labels.REPLICA)
    container_id = (event.get("Actor") or {}).get("ID") or event.get("id") or ""
    if not replica_id or not replica_id.isdigit():
        return None
    replica = (
        Replica.objects.select_related("service", "deployment")
        .filter(pk=int(replica_id), node=node)
        .first()
    )
    if replica is None or replica.container_id not in ("", container_id):
        return None  # a stale container of a moved replica: the reconcile removes it
    if not replica.container_id and action != "start":
        return None  # a pending row adopts only the container it starts, never an old one
    replica.container_id = container_id
    if action.startswith("health_status"):
        health = action.split(":", 1)[1].strip()
        seen = _event_seen(container_id, "running", health)
    elif action in _EVENT_STATES and _EVENT_STATES[action]:
        starting = "starting" if replica.deployment.spec.get("healthcheck") else "none"
        exit_code = attributes.get("exitCode")
        seen = _event_seen(
            container_id,
            _EVENT_STATES[action],
            starting if action == "start" else replica.health,
            int(exit_code) if exit_code not in (None, "") else None,
        )
    elif action == "destroy":
        seen = None
    elif action == "oom":
        # The die that follows carries the exit code; this says why.
        Replica.objects.filter(pk=replica.pk).update(error="killed: out of memory")
        return replica, None
    else:
        return None
    return replica, _save_seen(replica, seen, node, event_time(event))


def event_time(event):
    """When a Docker event happened, by the engine's clock (`timeNano`), not when it was
    processed: a watch that lags or replays must not pass old news off as new."""
    nanos = event.get("timeNano")
    if nanos:
        return datetime.fromtimestamp(nanos / 1e9, tz=UTC)
    if event.get("time"):
        return datetime.fromtimestamp(event["time"], tz=UTC)
    return timezone.now()


def _event_seen(container_id, state, health, exit_code=None):
    return engine.ObservedContainer(
        id=container_id,
        name="",
        labels={},
        state=state,
        health=health,
        exit_code=exit_code,
        host_ports=None,
        created=0,
    )
