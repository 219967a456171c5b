"""The converge planner: what the next steps toward a service's desired state are.

Pure: the desired state, the replica rows, the nodes and the time go in, a Plan
comes out. Nothing here reads the database, the engines or the clock, so every
rule of the rolling update, the health gating, the rollback and the healing can
be tried in a unit test. The rows are read, never changed: what should change
on them (a retry time, a restart) is in the plan, for the executor to apply.
"""

from datetime import datetime, timedelta
from typing import Any

from fleet.converge.plan import POLL, Desired, NodeState, Plan, Restart, Retry, Transition
from fleet.converge.scheduling import parse_constraint
from fleet.models import Deployment, EventKind, Replica

MIN_WAIT = 0.01  # seconds: the shortest wait for a moment the planner knows is coming
START_TIMEOUT = 90  # seconds a new replica may take to run, image pull included
STABLE_AFTER = 60  # seconds of running that reset a replica's restart count
MAX_BACKOFF = 60
CRASH_LOOP_AFTER = 3
SHORT_WAIT = 2  # seconds of backoff a converge waits out itself; longer is the reconcile's

Status = Deployment.Status
State = Replica.State


def plan(desired: Desired, rows: list[Replica], nodes: list[NodeState], now: datetime) -> Plan:
    """The next steps for a service: `rows` are its replicas, `nodes` every node."""
    return _Planner(desired, rows, {n.id: n for n in nodes}, now).run()


class _Planner:
    def __init__(
        self,
        desired: Desired,
        rows: list[Replica],
        nodes: dict[int | None, NodeState],
        now: datetime,
    ) -> None:
        self.desired, self.rows, self.nodes, self.now = desired, rows, nodes, now
        self.spec = desired.spec
        self.update = self.spec["update"]
        self.target = desired.deployment_id
        self.status = desired.status
        self.plan = Plan()
        # replicas of this revision on drained nodes, to move elsewhere
        self.moves: list[Replica] = []

    def run(self) -> Plan:
        if self.status == Status.PENDING:
            self.plan.begin = Transition(Transition.BEGIN)
            self.status = Status.RUNNING
        by_slot: dict[int, list[Replica]] = {}
        for row in self.rows:
            by_slot.setdefault(row.slot, []).append(row)
        count = self.desired.replicas
        self.plan.removals += [r for r in self.rows if r.slot > count]
        candidates = []
        for slot in range(1, count + 1):
            if self.plan_slot(slot, by_slot.get(slot, [])):
                candidates.append(slot)
            if self.plan.outcome:
                break
        if not self.plan.outcome:
            self.plan_moves()
            self.plan_batch(candidates, by_slot)
            self.plan_finish(by_slot)
        self.plan.removals = list({id(r): r for r in self.plan.removals}.values())
        return self.plan

    # --- what a replica is worth --------------------------------------------------------

    @property
    def rolling_out(self) -> bool:
        return self.status == Status.RUNNING

    def start_timeout(self) -> float:
        hc = self.spec["healthcheck"]
        if not hc:
            return START_TIMEOUT
        return (
            START_TIMEOUT
            + hc["start_period"]
            + (hc["interval"] + hc["timeout"]) * (hc["retries"] + 1)
        )

    def broken(self, row: Replica) -> str:
        """Why a replica cannot serve as it is, or "" when it can (or may yet)."""
        if row.state == State.FAILED:
            return row.error or "could not be created"
        if row.state == State.EXITED:
            return f"exited with code {row.exit_code}"
        if row.state == State.MISSING:
            return row.error or "is missing"
        if row.health == Replica.Health.UNHEALTHY:
            return "is unhealthy"
        age = (self.now - row.created_at).total_seconds()
        if not row.serving and age > self.start_timeout():
            return (
                f"was not {'healthy' if self.spec['healthcheck'] else 'running'} after {age:.0f} s"
            )
        return ""

    def proven(self, row: Replica) -> bool:
        """Serving, and for the whole monitor period."""
        return bool(
            row.serving
            and row.ready_at
            and (self.now - row.ready_at).total_seconds() >= self.update["monitor"]
        )

    # --- one slot -----------------------------------------------------------------------

    def plan_slot(self, slot: int, rows: list[Replica]) -> bool:
        """Decide for one slot; return True when it is a candidate for the rolling update."""
        new = [r for r in rows if r.deployment_id == self.target]
        old = [r for r in rows if r.deployment_id != self.target]
        if not rows:
            self.plan.new_slots.append(slot)
            return False
        if asked := [r for r in rows if r.restart_requested]:
            # An operator asked: now, without backoff, and not counted as a failure.
            self.plan.restarts += [Restart(r, r.restarts) for r in asked]
            return False
        halted = self.status == Status.FAILED
        if not new:
            self.plan.removals += old[1:]  # older leftovers of the slot: one old replica is enough
            if self.lost_with_its_node(old[0]) and not halted:
                # Moved at once, as outside a rollout: waiting for its turn in the update
                # would leave the service one short for as long as the slots before it take.
                self.heal(old[0])
                return False
            if halted and self.broken(old[0]):
                self.heal(old[0])  # the update is halted: keep the old revision alive
            return not halted
        row = new[0]
        problem = self.broken(row)
        if problem and row.state != State.MISSING:
            if self.rolling_out and not self.proven(row):
                self.fail(f"slot {slot} {problem}")
                if old:
                    self.plan.removals.append(row)  # the old replica keeps serving
                return False
            if old and any(o.serving for o in old):
                self.plan.removals.append(row)  # halted update: the old replica keeps serving
                return False
        if problem:
            self.heal(row)
        elif self.on_draining_node(row) and not old:
            self.moves.append(row)
        elif row.serving:
            # Its old replica goes once it serves, as in Swarm; the monitor period goes on
            # (a failure in it still fails the revision) without holding the update up.
            self.plan.removals += old
        else:
            self.plan.wait_for(POLL)
        return False

    def fail(self, reason: str) -> None:
        """The new revision failed: roll back to the last good one, or pause, or fail."""
        action = self.update["failure_action"]
        if action == "rollback" and self.desired.can_roll_back:
            kind = Transition.ROLL_BACK
        else:
            kind = Transition.PAUSE if action == "pause" else Transition.FAIL
        self.plan.outcome = Transition(kind, reason)

    # --- healing ------------------------------------------------------------------------

    def on_draining_node(self, row: Replica) -> bool:
        node = self.nodes.get(row.node_id)
        return node is not None and node.draining and not node.down

    def lost_with_its_node(self, row: Replica) -> bool:
        """Whether the replica's container went with its node (down or removed)."""
        node = self.nodes.get(row.node_id)
        return row.state == State.MISSING and (node is None or node.down)

    def heal(self, row: Replica) -> None:
        """Start a broken replica again, following the restart policy and backing off."""
        policy = self.spec["restart_policy"] if row.deployment_id == self.target else "any"
        if row.state == State.EXITED and (
            policy == "none" or (policy == "on-failure" and row.exit_code == 0)
        ):
            return
        if self.lost_with_its_node(row):
            # Its node is gone: move it at once.
            self.plan.restarts.append(
                Restart(
                    row,
                    row.restarts,
                    event=EventKind.REPLICA_RESCHEDULED,
                    reason=f"slot {row.slot} {row.error}",
                )
            )
            return
        # Otherwise (its node did not answer but is not down, or its container vanished,
        # or it failed) it backs off like any other failure, so that a node about to be
        # marked down, or an image that cannot be pulled, is not tried in a tight loop.
        restarts = row.restarts
        if row.started_at and (self.now - row.started_at).total_seconds() > STABLE_AFTER:
            restarts = 0
        retry_at = row.retry_at
        if retry_at is None:
            # 1 s before the first restart (time enough to see what happened), then 2, 4, ...
            retry_at = self.now + timedelta(seconds=min(2**restarts, MAX_BACKOFF))
            self.plan.retries.append(Retry(row, retry_at, restarts))
        wait = (retry_at - self.now).total_seconds()
        if wait > 0:
            # A short wait is waited out here; a long one is left to the reconcile.
            if wait <= SHORT_WAIT:
                self.plan.wait_for(wait)
            return
        self.plan.restarts.append(self.restart(row, restarts))

    def restart(self, row: Replica, restarts: int) -> Restart:
        """A restart after a failure: counted, reported once it loops, and on the same node
        when the failure was the replica's own (a crash, a pull that failed), not its node's."""
        reason: str | None
        if row.state == State.MISSING:
            reason = f"slot {row.slot} {row.error}"
            return Restart(row, restarts, event=EventKind.REPLICA_RESCHEDULED, reason=reason)
        restarts += 1
        event: str | None
        event = reason = None
        if restarts == CRASH_LOOP_AFTER:
            event = EventKind.REPLICA_CRASH_LOOPING
            reason = f"slot {row.slot} {self.broken(row)}, restarted {restarts} times"
        return Restart(row, restarts, self.same_node(row), event, reason or "")

    def same_node(self, row: Replica) -> int | None:
        """The row's own node when it may still take the replica, else None."""
        node = self.nodes.get(row.node_id)
        if node is None or not node.schedulable:
            return None
        constraints = [parse_constraint(text) for text in self.spec["constraints"]]
        if not all(c.matches(node) for c in constraints):
            return None
        return node.id

    def plan_moves(self) -> None:
        """Move the replicas of drained nodes elsewhere, `parallelism` at a time.

        Each is restarted on another node: drained out of the ingress, stopped, then
        started where placement says (as Swarm moves the tasks of a drained node). Paced
        like a rolling update, so a service never has more than `parallelism` replicas
        away at once."""
        if not self.moves:
            return
        away = sum(1 for r in self.rows if r.deployment_id == self.target and not r.serving)
        room = max(0, self.update["parallelism"] - away)
        for row in self.moves[:room]:
            node = self.nodes[row.node_id]
            reason = f"slot {row.slot} moved off {node.name}, which was drained"
            self.plan.restarts.append(
                Restart(row, row.restarts, event=EventKind.REPLICA_RESCHEDULED, reason=reason)
            )
        if len(self.moves) > room:
            self.plan.wait_for(POLL)

    # --- the rolling update -------------------------------------------------------------

    def plan_batch(self, candidates: list[int], by_slot: dict[int, list[Replica]]) -> None:
        """Pick the next slots to update, `parallelism` at a time, `delay` apart.

        A batch is done once its new replicas serve; their monitor period runs on beside
        the next batches (the way Swarm paces an update), so an update of N batches takes
        N start-ups, not N start-ups and N monitor periods."""
        if not candidates or self.status == Status.FAILED:
            return
        target_rows = [r for r in self.rows if r.deployment_id == self.target]
        in_flight = sum(1 for r in target_rows if not r.serving)
        room = self.update["parallelism"] - in_flight
        served = [r.ready_at for r in target_rows if r.serving and r.ready_at]
        if served and self.update["delay"]:
            next_batch = max(served) + timedelta(seconds=self.update["delay"])
            if self.now < next_batch:
                room = 0
                self.plan.wait_for(max((next_batch - self.now).total_seconds(), MIN_WAIT))
        if room <= 0:
            self.plan.wait_for(POLL)
            return
        # A new container cannot bind a fixed host port beside the old one on its node.
        stop_first = self.update["order"] == "stop-first" or publishes_fixed_ports(self.spec)
        # Slots whose old replica cannot serve (crashed, exited) go first: updating them
        # brings the service back to its count as well.
        candidates = sorted(candidates, key=lambda slot: not self.broken(by_slot[slot][0]))
        for slot in candidates[:room]:
            self.plan.new_slots.append(slot)
            if stop_first:
                self.plan.removals += by_slot[slot]
            else:
                self.plan.leaving += by_slot[slot]

    def plan_finish(self, by_slot: dict[int, list[Replica]]) -> None:
        """Progress, and success once every slot runs a proven replica of the target."""
        if not self.rolling_out:
            return
        count = self.desired.replicas
        done = 0
        for slot in range(1, count + 1):
            rows = by_slot.get(slot, [])
            if len(rows) == 1 and rows[0].deployment_id == self.target and self.proven(rows[0]):
                done += 1
        extra = any(r.slot > count for r in self.rows)
        if done == count and not extra and not (self.plan.new_slots or self.plan.restarts):
            self.plan.finish = Transition(Transition.SUCCEED, f"{count} replica(s) serving", 100)
        else:
            progress = 100 if count == 0 else done * 100 // count
            self.plan.finish = Transition(Transition.PROGRESS, progress=progress)
            self.plan.wait_for(POLL)
            # Nothing tells a converge that a monitor period ended: look again just then.
            for row in self.rows:
                if row.deployment_id == self.target and row.serving and not self.proven(row):
                    # Serving, so observe has set ready_at (it does when a replica begins to serve).
                    proof: datetime = row.ready_at + timedelta(seconds=self.update["monitor"])  # type: ignore[operator, assignment]
                    self.plan.wait_for(max((proof - self.now).total_seconds(), MIN_WAIT))


def publishes_fixed_ports(spec: dict[str, Any]) -> bool:
    """Whether a spec publishes a fixed host port, which a node can bind only once."""
    return any(p.get("published") for p in spec.get("ports", []))
