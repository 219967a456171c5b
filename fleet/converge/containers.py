"""Replica containers: place them, start them, replace and remove them, many at once."""

import logging
import secrets
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db.models import Count, QuerySet
from django.utils import timezone

from fleet import engine, live
from fleet.access import sealing
from fleet.converge import inflight, scheduling
from fleet.engine import labels
from fleet.ingress.drain import drain, limit_of
from fleet.models import Deployment, Node, Replica, Service
from fleet.models.threads import close_thread_connections
from fleet.services import registries

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10
HOLD_MARGIN = 30  # seconds beyond a removal's drain and stop before it counts as dead
LIVE_STATES = (Replica.State.PENDING, Replica.State.RUNNING)


def published_ports(spec: dict[str, Any]) -> list[tuple[int, str]]:
    """The fixed host ports a spec publishes, as (port, protocol) pairs."""
    return [(p["published"], p["protocol"]) for p in spec.get("ports", []) if p.get("published")]


def container_spec(replica: Replica) -> engine.ContainerSpec:
    """The container for a replica row: its deployment's spec, named and labelled as Fleet's."""
    service, deployment = replica.service, replica.deployment
    spec = deployment.spec
    return engine.ContainerSpec(
        name=f"{service.name}.{replica.slot}.{secrets.token_hex(3)}",
        image=spec["image"],
        labels={
            labels.SERVICE: service.name,
            labels.SLOT: str(replica.slot),
            labels.DEPLOYMENT: str(deployment.pk),
            labels.REVISION: str(deployment.revision),
            labels.REPLICA: str(replica.pk),
        },
        command=spec["command"],
        # Secrets are opened here only, on their way to the engine.
        env={**spec["env"], **sealing.open_all(spec.get("secrets", {}))},
        ports=spec["ports"],
        healthcheck=docker_healthcheck(spec["healthcheck"]),
        cpus=spec["resources"]["cpus"],
        memory_bytes=spec["resources"]["memory_bytes"],
        auth=registries.auth_for(spec["image"]),
    )


def node_views(
    nodes: dict[int, Node],
    service_id: int,
    leaving: Iterable[Replica] = (),
    taken: Iterable[Node] = (),
    spec: dict[str, Any] | None = None,
) -> list[scheduling.NodeView]:
    """What placement needs to know of every node, counting what is about to leave as gone,
    and what is about to start on a node of `taken` (a restart kept in place, of `spec`)."""
    leaving = {r.pk for r in leaving}  # type: ignore[misc]  # their ids, from here on
    load: Counter[int]
    mine: Counter[int]
    published: defaultdict[int, set[tuple[int, str]]]
    load, mine, published = Counter(), Counter(), defaultdict(set)
    alive = Replica.objects.filter(state__in=LIVE_STATES, node__isnull=False).exclude(
        pk__in=leaving
    )
    groups, specs = _by_deployment(alive, "node_id", "service_id")
    coming = [((node.pk, service_id, None), 1) for node in taken]
    for (node_id, owner, deployment_id), count in [*groups, *coming]:
        load[node_id] += count
        mine[node_id] += count if owner == service_id else 0
        replica_spec = spec if deployment_id is None else specs[deployment_id]
        published[node_id].update(published_ports(replica_spec))  # type: ignore[arg-type]  # `taken` comes with its `spec`
    return [
        scheduling.NodeView(
            name=node.name,
            labels=node.labels,
            schedulable=node.schedulable,
            os=node.os,
            arch=node.arch,
            load=load[node.pk],
            service_replicas=mine[node.pk],
            published=frozenset(published[node.pk]),
        )
        for node in nodes.values()
    ]


def place(
    nodes: dict[int, Node],
    service: Service,
    spec: dict[str, Any],
    count: int,
    leaving: Iterable[Replica] = (),
    taken: Iterable[Node] = (),
) -> list[Node]:
    """Nodes for `count` new replicas of the service; raise scheduling.PlacementError."""
    constraints = [scheduling.parse_constraint(text) for text in spec["constraints"]]
    names = scheduling.place(
        node_views(nodes, service.pk, leaving, taken, spec),
        count,
        constraints=constraints,
        ports=published_ports(spec),
    )
    by_name = {node.name: node for node in nodes.values()}
    return [by_name[name] for name in names]


@close_thread_connections
def start(replica: Replica) -> None:
    """Create and start the replica's container; a failure is recorded on the row."""
    try:
        replica.refresh_from_db()
    except Replica.DoesNotExist:
        return  # removed meanwhile (a scale down, a rollback): nothing to start
    if replica.container_id:
        return  # another pass already did it
    # Late (its node froze meanwhile), the row may have moved on: then it is left alone,
    # and a container made after all is an orphan for the reconcile.
    still = Replica.objects.filter(  # type: ignore[misc]  # node_id None would match IS NULL
        pk=replica.pk, node_id=replica.node_id, container_id="", state=Replica.State.PENDING
    )
    node = replica.node
    if node is None:  # removed since placement: placed again, like a replica it lost
        still.update(
            state=Replica.State.MISSING,
            error="could not be created: its node was removed",
            finished_at=timezone.now(),
        )
        live.broadcast_replica(replica)
        return
    try:
        spec = container_spec(replica)
        with inflight.starting.on(node.pk):
            container_id = registries.trusting(
                node, spec.image, lambda: engine.run_container(node, spec)
            )
    except engine.EngineUnreachable as exc:
        # The node's fault, not the revision's: missing, so it is placed again (elsewhere
        # once the node is marked down) rather than failing a rollout.
        still.update(
            state=Replica.State.MISSING,
            error=f"could not be created, {replica.node} did not answer: {exc}"[:2000],
            finished_at=timezone.now(),
        )
    except (engine.EngineError, sealing.SealError) as exc:
        still.update(state=Replica.State.FAILED, error=str(exc)[:2000], finished_at=timezone.now())
    else:
        # Seen now: a listing begun before the container existed must not call it missing.
        still.update(
            container_id=container_id, container_name=spec.name, observed_at=timezone.now()
        )
    live.broadcast_replica(replica)


@close_thread_connections
def remove(replica: Replica, stop_after: inflight.Starts | None = None) -> None:
    """Forget a replica (its row is deleted), then stop and remove its container."""
    forget([replica])
    retire(replica, stop_after)


def forget(replicas: Sequence[Replica]) -> None:
    """Delete these replicas' rows, their containers counted as going (see retire).

    The row goes first, so that the container's own death is not mistaken for a
    crash; should the removal be cut short, the container is an orphan the reconcile
    removes.
    """
    if replicas:
        inflight.will_go([r.container_id for r in replicas], max(map(hold_for, replicas)))
    Replica.objects.filter(pk__in=[r.pk for r in replicas]).delete()
    for replica in replicas:
        live.broadcast_replica(replica)


def hold_for(replica: Replica) -> float:
    """How long removing the replica's container may take, its drain and stop included
    (what other processes leave it alone for: inflight.will_go)."""
    deployment = replica.service.current_deployment
    return limit_of(deployment.spec if deployment else {}) + STOP_TIMEOUT + HOLD_MARGIN


@close_thread_connections
def retire(replica: Replica, stop_after: inflight.Starts | None = None) -> None:
    """Drain a forgotten replica's container out of the ingress, then stop and remove it.

    `stop_after` (an inflight.Starts) holds the stop until the starts made beside it have ended:
    the engine then stops the old container without slowing the new ones' start.
    """
    with inflight.removing(replica.container_id, hold_for(replica)):
        node = replica.node
        if replica.container_id and node is not None and node.status != Node.Status.DOWN:
            drain(replica, replica.container_id)  # out of the ingress, its requests finished
            if stop_after is not None:
                stop_after.wait(node.pk)
            try:
                engine.remove_container(node, replica.container_id, STOP_TIMEOUT)
            except engine.EngineError as exc:
                log.warning("could not remove %s on %s: %s", replica.container_id, node, exc)


@close_thread_connections
def remove_orphan(node: Node, container_id: str) -> None:
    """Remove a container Fleet made that no replica claims."""
    try:
        engine.remove_container(node, container_id, STOP_TIMEOUT)
    except engine.EngineError as exc:
        log.warning("could not remove orphan %s on %s: %s", container_id, node, exc)


def reset_for_restart(replica: Replica, node: Node) -> None:
    """Turn a broken replica's row into a fresh one on `node` (the old container goes first)."""
    replica.node = node
    replica.container_id = ""
    replica.container_name = ""
    replica.state = Replica.State.PENDING
    replica.health = Replica.Health.NONE
    replica.exit_code = None
    replica.error = ""
    replica.host_ports = {}
    replica.started_at = replica.ready_at = replica.finished_at = replica.retry_at = None
    replica.observed_at = None
    replica.restart_requested = False
    replica.created_at = timezone.now()
    replica.save()
    live.broadcast_replica(replica)


_pulls_ahead: ThreadPoolExecutor | None = None  # made at the first use, in the process that pulls


def pull_ahead(image: str, nodes: Iterable[Node]) -> None:
    """Pull an image on these nodes in the background, each where it lacks it. Errors
    are only logged: a start that needs the image pulls it itself and says why not."""
    global _pulls_ahead
    if _pulls_ahead is None:
        _pulls_ahead = ThreadPoolExecutor(4, thread_name_prefix="pull-ahead")
    for node in nodes:
        _pulls_ahead.submit(_pull_ahead_on, node, image)


@close_thread_connections
def _pull_ahead_on(node: Node, image: str) -> None:
    try:
        auth = registries.auth_for(image)
        registries.trusting(node, image, lambda: engine.ensure_image(node, image, auth))
    except engine.EngineError as exc:
        log.info("could not pull %s ahead on %s: %s", image, node, exc)
    except Exception:
        log.exception("could not pull %s ahead on %s", image, node)


@close_thread_connections
def replace(replica: Replica, old_node: Node | None, old_container_id: str) -> None:
    """Remove a broken replica's old container (when its node answers), then start the new one."""
    with inflight.removing(old_container_id, hold_for(replica)):
        if old_container_id and old_node is not None and old_node.status != Node.Status.DOWN:
            drain(replica, old_container_id)
            try:
                engine.remove_container(old_node, old_container_id, STOP_TIMEOUT)
            except engine.EngineError as exc:
                log.warning("could not remove %s on %s: %s", old_container_id, old_node, exc)
    start(replica)


def reservations(node_ids: Iterable[int] | None = None) -> dict[int, tuple[float, ...]]:
    """{node id: (cpus, memory bytes, replicas)} that Fleet's live replicas reserve on each node."""
    rows = Replica.objects.filter(state__in=LIVE_STATES, node__isnull=False)
    if node_ids is not None:
        rows = rows.filter(node_id__in=node_ids)
    totals: defaultdict[int, list[float]] = defaultdict(lambda: [0.0, 0, 0])
    groups, specs = _by_deployment(rows, "node_id")
    for (node_id, deployment_id), count in groups:
        limits = specs[deployment_id].get("resources") or {}
        totals[node_id][0] += (limits.get("cpus") or 0) * count
        totals[node_id][1] += (limits.get("memory_bytes") or 0) * count
        totals[node_id][2] += count
    return {node_id: tuple(total) for node_id, total in totals.items()}


def _by_deployment(
    replicas: QuerySet[Replica], *keys: str
) -> tuple[list[tuple[tuple[Any, ...], int]], dict[int, dict[str, Any]]]:
    """([((*keys, deployment id), replica count)], {deployment id: spec}) of these replicas.

    Counted in the database and each deployment's spec read once: a fleet of 1,000
    replicas has a few dozen deployments, and decoding a spec per replica was most of
    the cost of a placement or of the overview's reservations.
    """
    counted = replicas.values_list(*keys, "deployment_id").annotate(n=Count("pk")).order_by()
    groups = [(tuple(row[:-1]), row[-1]) for row in counted]
    wanted = {key[-1] for key, _ in groups}
    specs = dict(Deployment.objects.filter(pk__in=wanted).values_list("pk", "spec"))
    return groups, specs


def docker_healthcheck(hc: dict[str, Any] | None) -> dict[str, Any] | None:
    """A validated healthcheck in the Engine API's form, durations in nanoseconds."""
    if hc is None:
        return None
    return {
        "test": list(hc["command"]),
        "interval": _nanoseconds(hc["interval"]),
        "timeout": _nanoseconds(hc["timeout"]),
        "retries": hc["retries"],
        "start_period": _nanoseconds(hc["start_period"]),
    }


def _nanoseconds(seconds: float) -> int:
    # Rounded, not truncated: 1.001 * 1e9 is 1000999999.9999999 in floating point.
    return round(seconds * 1_000_000_000)
