"""The safety net: desired vs observed for every node and service, every few seconds.

Whatever an event or a converge missed (a node that was down, a worker killed
mid-deploy, a watcher restart) is found here from one cheap listing per node:
containers Fleet owns that no replica claims are removed, containers Fleet
does not own are never touched, and every service that is not where it should
be gets a converge.
"""

import logging
from collections.abc import Set
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from fleet import live, queue
from fleet.converge import containers, inflight
from fleet.engine import labels
from fleet.ingress import sync as ingress
from fleet.models import Deployment, Node, Replica, Service
from fleet.nodes import observe

log = logging.getLogger(__name__)


def sync_and_clean() -> int:
    """From one listing per node: correct every replica's state, and remove containers
    labelled as Fleet's that no replica claims; return how many were removed."""
    now = timezone.now()
    nodes = list(Node.objects.exclude(status=Node.Status.DOWN).filter(failures=0))
    listings = observe.list_on(nodes, labels.SERVICE)
    by_pk = {node.pk: node for node in nodes}
    # Whatever an event missed: every replica's state from the same listing.
    for pk, listed in listings.items():
        observe.apply_listing(by_pk[pk], listed, now)
    # A converge marks these too, but one that was busy when the node went down may
    # have finished without seeing it: marked here, they make their service's converge due.
    mark_lost_on_down_nodes()
    # Read the claims after listing, so that a container saved meanwhile counts as claimed.
    claimed = set(Replica.objects.exclude(container_id="").values_list("container_id", flat=True))
    pending = {
        str(pk)
        for pk in Replica.objects.filter(state=Replica.State.PENDING).values_list("pk", flat=True)
    }
    # A converge removes its own service's orphans; the containers it is draining and
    # removing are claimed by no row, yet not orphans (see inflight.going).
    converging = set(
        Service.objects.filter(lease_until__gt=timezone.now()).values_list("name", flat=True)
    )
    going = inflight.going()
    orphans = [
        (by_pk[pk], container.id)
        for pk, listed in listings.items()
        for container in listed
        if container.id not in claimed
        and container.id not in going
        and not observe.in_creation(container, pending, now)
        and container.labels.get(labels.SERVICE) not in converging
    ]
    inflight.run_parallel([(containers.remove_orphan, *orphan) for orphan in orphans])
    return len(orphans)


def mark_lost_on_down_nodes() -> None:
    """Mark the replicas of down (or removed) nodes missing, so that they move elsewhere."""
    lost = Replica.objects.filter(Q(node__status=Node.Status.DOWN) | Q(node__isnull=True))
    lost = lost.exclude(state__in=(Replica.State.MISSING, Replica.State.FAILED))
    for replica in lost.select_related("service", "node"):
        # Only if no converge moved it meanwhile: the same node and container as read.
        marked = (
            Replica.objects.filter(  # type: ignore[misc]  # node_id None matches IS NULL: meant
                pk=replica.pk, node_id=replica.node_id, container_id=replica.container_id
            )
            .exclude(state__in=(Replica.State.MISSING, Replica.State.FAILED))
            .update(
                state=Replica.State.MISSING,
                error=f"node {replica.node or 'removed'} is down",
                ready_at=None,
            )
        )
        if marked:
            live.broadcast_replica(replica)


def needs_converge(
    service: Service, rows: list[Replica], now: datetime, draining: Set[int] = frozenset()
) -> bool:
    """Is the service away from its desired state in a way a converge could fix now?

    `draining`: ids of the drained nodes whose replicas may move (another node takes
    new replicas)."""
    target = service.current_deployment
    if service.deleting or target is None:
        return service.deleting
    if target.status in (Deployment.Status.PENDING, Deployment.Status.RUNNING):
        return True
    if any(r.slot > service.replicas or r.restart_requested for r in rows):
        return True  # a slot to remove, or a restart an operator asked for
    if any(r.node_id in draining for r in rows):
        return True  # a replica to move off a drained node
    halted = target.status == Deployment.Status.FAILED
    good = {r.slot for r in rows if r.serving and (halted or r.deployment_id == target.pk)}
    if good == set(range(1, service.replicas + 1)):
        return False
    waiting = [r for r in rows if r.slot not in good and r.retry_at and r.retry_at > now]
    return len({r.slot for r in waiting}) < service.replicas - len(good)


def services_to_converge() -> list[int]:
    """Ids of services off their desired state whose lease is free."""
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    services = list(Service.objects.filter(free).select_related("current_deployment"))
    rows: dict[int, list[Replica]] = {}
    for row in Replica.objects.filter(service__in=services):
        rows.setdefault(row.service_id, []).append(row)
    draining: set[int] = set()
    nodes = list(Node.objects.all())
    if any(node.schedulable for node in nodes):  # else there is nowhere to move to
        draining = {
            node.pk
            for node in nodes
            if node.availability == Node.Availability.DRAIN and node.status != Node.Status.DOWN
        }
    return [s.pk for s in services if needs_converge(s, rows.get(s.pk, []), now, draining)]


def run() -> None:
    """One round of the safety net; queue the converges it finds necessary."""
    removed = sync_and_clean()
    if removed:
        log.info("removed %d orphan container(s)", removed)
    for service_id in services_to_converge():
        queue.converge(service_id)
    ingress.sync_all()  # whatever a missed change left in the proxy
