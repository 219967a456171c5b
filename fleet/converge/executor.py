"""The acting half of a converge: look at what runs, ask the planner, do what it says.

One look syncs the replica rows from the nodes, removes orphan containers,
plans, makes the deployment transitions the plan names, places new replicas and
does the engine work through fleet.converge.containers, all nodes at once. The lease is
checked before every batch of engine work, so a converge that lost it never
acts beside the one that took over.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from fleet import live
from fleet.converge import containers, inflight, planner, scheduling, transitions
from fleet.converge.plan import POLL, Desired, NodeState, Plan, Transition
from fleet.ingress import sync as ingress
from fleet.models import Deployment, Event, Node, Replica, Service
from fleet.nodes import observe

if TYPE_CHECKING:
    from fleet.converge.lease import Lease

ROLLING_OUT = (Deployment.Status.PENDING, Deployment.Status.RUNNING)


def node_states(nodes: dict[int, Node]) -> list[NodeState]:
    """The planner's view of the nodes: {id: Node} -> [NodeState]."""
    return [
        NodeState(
            id=node.pk,
            name=node.name,
            labels=node.labels,
            os=node.os,
            arch=node.arch,
            down=node.status == Node.Status.DOWN,
            schedulable=node.schedulable,
            draining=node.availability == Node.Availability.DRAIN,
        )
        for node in nodes.values()
    ]


def desired_of(service: Service) -> Desired:
    target: Deployment = service.current_deployment  # type: ignore[assignment]  # see look
    can_roll_back = target.status in ROLLING_OUT and (
        Deployment.objects.rollback_target(service, target) is not None
    )
    return Desired(
        replicas=service.replicas,
        deployment_id=target.pk,
        status=target.status,
        spec=target.spec,
        can_roll_back=can_roll_back,
    )


def look(
    service: Service, lease: "Lease", background: inflight.Calls | None = None
) -> tuple[bool, float]:
    """One look at a service and the steps the planner names; return (settled, pause).

    Settled: nothing was left to do or to wait for. Raises lease.LeaseLost.
    `background` (inflight.Calls) takes a rolling update's starts and the removals of
    the old replicas beside them, to run on while the converge looks again; without it,
    the look waits for them.
    """
    if background is None:
        background = inflight.Calls()
        try:
            return look(service, lease, background)
        finally:
            background.wait()
            background.close()
    # A service has a deployment from its creation on (services.actions.create).
    target: Deployment = service.current_deployment  # type: ignore[assignment]
    nodes = {n.pk: n for n in Node.objects.all()}
    rows = list(service.replica_set.select_related("deployment", "node"))
    orphans = observe.sync_replicas(service, rows, nodes)
    going = inflight.going()  # read after the listing: removals an earlier look began
    orphans = [(node, container_id) for node, container_id in orphans if container_id not in going]
    if orphans:
        lease.ensure()
        inflight.run_parallel([(containers.remove_orphan, *orphan) for orphan in orphans])
    ingress.sync(service)  # its route and servers follow the revision and the rows
    now = timezone.now()
    plan = planner.plan(desired_of(service), rows, node_states(nodes), now)
    if plan.begin:
        transitions.begin(target, now)
    if plan.outcome:
        halt = plan.outcome.kind
        if not transitions.fail(service, target, plan.outcome.reason, halt, now):
            return False, POLL  # someone else decided first: look again
    for retry in plan.retries:
        retry.row.retry_at, retry.row.restarts = retry.retry_at, retry.restarts
        retry.row.save(update_fields=["retry_at", "restarts", "updated_at"])
    started = act(service, target, plan, nodes, lease, background)
    if plan.begin:
        pull_ahead(target, rows, nodes)
    if plan.finish and plan.finish.kind == Transition.SUCCEED:
        background.wait()  # the last old replicas are gone before it says so
        transitions.succeed(service, target, plan.finish.reason, now)
    elif plan.finish:
        transitions.progress(target, plan.finish.progress)
    settled = not (started or plan.removals or background.busy()) and plan.wait is None
    return settled, plan.pause


def act(
    service: Service,
    target: Deployment,
    plan: Plan,
    nodes: dict[int, Node],
    lease: "Lease",
    background: inflight.Calls,
) -> bool:
    """Remove what goes and place and start what comes; return whether anything started
    (False when placement could not be met: then nothing of it is applied).

    What must go before the new replicas come (a slot's old replica under stop-first, a
    fixed host port the new ones may need) goes first; the rest (old replicas whose new
    ones serve) goes beside the starts, so that draining and stopping them does not hold
    up the next batch of a rolling update. A look with removals beside leaves its calls
    to `background`: when the two replicas of a batch turn healthy apart, the second
    one's replacement starts at the next look instead of after the first one's start,
    drain and stop. Other looks (a scale up, restarts) wait for their calls, so that no
    look lists the engines while they start a burst of containers.
    """
    removals = list({r.pk: r for r in plan.removals}.values())
    first, beside = removals, []
    if plan.new_slots or plan.restarts:
        beside = [r for r in removals if may_go_beside(r, plan, target.spec)]
        first = [r for r in removals if r not in beside]
    if first:
        lease.ensure()
        inflight.run_parallel([(containers.remove, r) for r in first])
    if not (plan.new_slots or plan.restarts):
        return False
    try:
        picks = place(service, target.spec, plan, nodes, beside)
    except scheduling.PlacementError as exc:
        transitions.report_placement(service, target, str(exc))
        if beside:
            inflight.run_parallel([(containers.remove, r) for r in beside])
        return False
    lease.ensure()
    # The old replicas beside are drained at once, and stopped once the new ones have
    # started: an engine stopping a container while it starts another starts it slower.
    starts = inflight.Starts(len(plan.new_slots), containers.start)
    containers.forget(beside)  # gone from the plan at once; their containers are going
    calls: list[inflight.Call] = [(containers.retire, r, starts) for r in beside]
    for slot in plan.new_slots:
        row = Replica.objects.create(
            service=service, deployment=target, slot=slot, node=picks.pop(0)
        )
        row.service, row.deployment = service, target
        live.broadcast_replica(row)
        calls.append((starts.start, row))
    for restart, node in zip(plan.restarts, picks, strict=True):
        row = restart.row
        calls.append((containers.replace, row, row.node, row.container_id))
        row.restarts = restart.restarts
        if restart.event:
            Event.objects.record(
                restart.event,
                service=service,
                node=node,
                old=str(row.node or ""),
                reason=restart.reason,
            )
        # The old container: going, not an orphan.
        inflight.will_go([row.container_id], containers.hold_for(row))
        containers.reset_for_restart(row, node)
    if beside:
        background.submit(calls)
    else:
        inflight.run_parallel(calls)
    return True


def pull_ahead(target: Deployment, rows: list[Replica], nodes: dict[int, Node]) -> None:
    """A new revision has begun: pull its image now on the nodes its later batches will
    most likely use (those of the service's replicas that got no start this look), so
    that each batch after the first starts without waiting for a pull."""
    starting = set(Replica.objects.filter(deployment=target).values_list("node_id", flat=True))
    ahead = {row.node_id for row in rows if row.node_id} - starting
    ready = [nodes[pk] for pk in sorted(ahead) if nodes[pk].status == Node.Status.READY]
    if ready:
        containers.pull_ahead(target.spec["image"], ready)


def may_go_beside(row: Replica, plan: Plan, spec: dict[str, Any]) -> bool:
    """Whether a replica that goes may be removed while the new ones start: not the old
    replica of a slot being started or restarted, and nothing that holds or needs a fixed port."""
    if row.slot in plan.new_slots or row.slot in {r.row.slot for r in plan.restarts}:
        return False
    return not (containers.published_ports(spec) or containers.published_ports(row.deployment.spec))


def place(
    service: Service,
    spec: dict[str, Any],
    plan: Plan,
    nodes: dict[int, Node],
    going: Iterable[Replica] = (),
) -> list[Node]:
    """A node for each new slot, then for each restart, in the plan's order.

    A restart the planner keeps on its node stays there, unless another service has
    meanwhile taken a fixed port it needs there; the rest are placed, counting those
    kept as taken and the replicas on their way out (`going` too) as gone, so they
    spread evenly. Raises scheduling.PlacementError.
    """
    leaving = [r.row for r in plan.restarts] + plan.leaving + list(going)
    ports = set(containers.published_ports(spec))
    views = {v.name: v for v in containers.node_views(nodes, service.pk, leaving)}
    kept = {}
    for index, restart in enumerate(plan.restarts):
        node = nodes.get(restart.node_id)  # type: ignore[arg-type]  # None: not kept, none found
        if node is not None and not views[node.name].published & ports:
            kept[index] = node
    wanted = len(plan.new_slots) + len(plan.restarts) - len(kept)
    taken = list(kept.values())
    picks = containers.place(nodes, service, spec, wanted, leaving, taken)
    placed = iter(picks)
    new = [next(placed) for _ in plan.new_slots]
    return new + [kept.get(i) or next(placed) for i in range(len(plan.restarts))]


def teardown(service: Service, lease: "Lease") -> None:
    """Remove every container of a service being deleted, then the service itself."""
    nodes = {n.pk: n for n in Node.objects.all()}
    rows = list(service.replica_set.select_related("node"))
    orphans = observe.sync_replicas(service, rows, nodes)
    calls = [(containers.remove, r) for r in rows]
    calls += [(containers.remove_orphan, *orphan) for orphan in orphans]
    lease.ensure()
    inflight.run_parallel(calls)
    service.delete()
