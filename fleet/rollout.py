"""Deploy, scale, roll back and heal one service, as idempotent passes.

converge(service_id) claims the service with a lease (a conditional UPDATE) and
repeats passes until what runs equals what is desired. Each pass reads the
desired state afresh, so the later of two scale requests wins; syncs the
replica rows from the nodes; and takes the next steps of the rolling update.
All it needs to go on lives in the database and in the containers' labels, so a
converge killed at any point is finished by the next one, which the reconcile
starts within seconds.
"""

import logging
import threading
import time
import uuid
from collections import defaultdict
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import containers, live, observe, scheduling
from .lease import claim, keep_lease, release
from .models import Deployment, Event, EventKind, Node, Replica, Service

log = logging.getLogger(__name__)

POLL = 0.25
RUN_LIMIT = 180  # seconds one converge works before handing over (under the task time limit)
START_TIMEOUT = 90  # seconds a new replica may take to run, image pull included
STABLE_AFTER = 60  # seconds of running that reset a replica's restart count
MAX_BACKOFF = 60
CRASH_LOOP_AFTER = 3
SHORT_WAIT = 2  # seconds of backoff a converge waits out itself


def converge(service_id):
    """Bring one service to its desired state; return a word on how it ended."""
    owner = uuid.uuid4().hex
    if not claim(service_id, owner):
        return "busy"
    stop = threading.Event()
    threading.Thread(target=keep_lease, args=(service_id, owner, stop), daemon=True).start()
    try:
        deadline = time.monotonic() + RUN_LIMIT
        while time.monotonic() < deadline:
            if not claim(service_id, owner):
                return "lease lost"
            service = Service.objects.select_related("current_deployment").filter(pk=service_id)
            service = service.first()
            if service is None:
                return "gone"
            if service.deleting:
                teardown(service)
                return "deleted"
            generation = service.generation
            work = Pass(service)
            if work.run() and not changed_since(service_id, generation):
                return "converged"
            time.sleep(work.pause)
        return "continues later"
    finally:
        stop.set()
        release(service_id, owner)


def changed_since(service_id, generation):
    return Service.objects.filter(pk=service_id).exclude(generation=generation).exists()


def teardown(service):
    """Remove every container of a service being deleted, then the service itself."""
    nodes = {n.pk: n for n in Node.objects.all()}
    rows = list(service.replica_set.select_related("node"))
    orphans = observe.sync_replicas(service, rows, nodes)
    calls = [(containers.remove, r) for r in rows]
    calls += [(containers.remove_orphan, *orphan) for orphan in orphans]
    containers.run_parallel(calls)
    service.delete()


class Pass:
    """One look at a service and the next steps toward its desired state."""

    def __init__(self, service):
        self.service = service
        self.target = service.current_deployment
        self.spec = self.target.spec
        self.update = self.spec["update"]
        self.now = timezone.now()
        self.nodes = {n.pk: n for n in Node.objects.all()}
        self.rows = list(service.replica_set.select_related("deployment", "node"))
        self.new_slots = []  # slots that get a fresh replica of the target
        self.restarts = []  # broken replicas to start again
        self.removals = []
        self.replaced = []  # old replicas whose slots get a new one this pass (start-first)
        self.waiting = False
        self.pause = POLL  # how long to sleep before the next pass
        self.replan = False

    def wait(self, seconds):
        """Something is under way: look again in `seconds` (the soonest of all reasons)."""
        self.pause = seconds if not self.waiting else min(self.pause, seconds)
        self.waiting = True

    def run(self):
        """Plan and act; True when nothing is left to do or wait for in this converge."""
        orphans = observe.sync_replicas(self.service, self.rows, self.nodes)
        containers.run_parallel([(containers.remove_orphan, *orphan) for orphan in orphans])
        self.begin_rollout()
        by_slot = defaultdict(list)
        for row in self.rows:
            by_slot[row.slot].append(row)
        self.removals += [r for r in self.rows if r.slot > self.service.replicas]
        candidates = []
        for slot in range(1, self.service.replicas + 1):
            if self.plan_slot(slot, by_slot[slot]):
                candidates.append(slot)
            if self.replan:
                break
        if not self.replan:
            self.plan_batch(candidates, by_slot)
        self.execute()
        if not self.replan:
            self.finish_rollout(by_slot)
        return not (self.new_slots or self.restarts or self.removals or self.waiting)

    # --- the rules -------------------------------------------------------------------

    @property
    def rolling_out(self):
        return self.target.status == Deployment.Status.RUNNING

    def start_timeout(self):
        hc = self.spec["healthcheck"]
        if not hc:
            return START_TIMEOUT
        return (
            START_TIMEOUT
            + hc["start_period"]
            + (hc["interval"] + hc["timeout"]) * (hc["retries"] + 1)
        )

    def broken(self, row):
        """Why a replica cannot serve as it is, or "" when it can (or may yet)."""
        if row.state == Replica.State.FAILED:
            return row.error or "could not be created"
        if row.state == Replica.State.EXITED:
            return f"exited with code {row.exit_code}"
        if row.state == Replica.State.MISSING:
            return row.error or "is missing"
        if row.health == Replica.Health.UNHEALTHY:
            return "is unhealthy"
        age = (self.now - row.created_at).total_seconds()
        if not row.serving and age > self.start_timeout():
            return (
                f"was not {'healthy' if self.spec['healthcheck'] else 'running'} after {age:.0f} s"
            )
        return ""

    def proven(self, row):
        """Serving, and for the whole monitor period."""
        return bool(
            row.serving
            and row.ready_at
            and (self.now - row.ready_at).total_seconds() >= self.update["monitor"]
        )

    def plan_slot(self, slot, rows):
        """Decide for one slot; return True when it is a candidate for the rolling update."""
        new = [r for r in rows if r.deployment_id == self.target.pk]
        old = [r for r in rows if r.deployment_id != self.target.pk]
        if not rows:
            self.new_slots.append(slot)
            return False
        if asked := [r for r in rows if r.restart_requested]:
            self.restarts += asked  # an operator asked: now, without backoff
            return False
        if not new:
            self.removals += old[1:]  # older leftovers of the slot: one old replica is enough
            if self.target.status == Deployment.Status.FAILED and self.broken(old[0]):
                self.heal(old[0])  # the update is halted: keep the old revision alive
            return self.target.status != Deployment.Status.FAILED
        row = new[0]
        problem = self.broken(row)
        if problem and row.state != Replica.State.MISSING:
            if self.rolling_out and not self.proven(row):
                self.fail_rollout(row, f"slot {slot} {problem}", keep_old=bool(old))
                return False
            if old and any(o.serving for o in old):
                self.removals.append(row)  # halted update: the old replica keeps serving
                return False
        if problem:
            self.heal(row)
        elif self.proven(row):
            self.removals += old
        elif old or not row.serving:
            self.wait(POLL)
        return False

    def previous_good(self):
        return Deployment.objects.rollback_target(self.service, self.target)

    def heal(self, row):
        """Start a broken replica again, following the restart policy and backing off."""
        policy = self.spec["restart_policy"] if row.deployment_id == self.target.pk else "any"
        if row.state == Replica.State.EXITED and (
            policy == "none" or (policy == "on-failure" and row.exit_code == 0)
        ):
            return
        node = self.nodes.get(row.node_id)
        if row.state == Replica.State.MISSING and (node is None or node.status == Node.Status.DOWN):
            self.restarts.append(row)  # its node is gone: move it at once
            return
        # Otherwise (its node did not answer but is not down, or its container vanished)
        # it backs off like any other failure, so that a node about to be marked down is
        # not tried again in a tight loop.
        if row.started_at and (self.now - row.started_at).total_seconds() > STABLE_AFTER:
            row.restarts = 0
        if row.retry_at is None:
            # 1 s before the first restart (time enough to see what happened), then 2, 4, ...
            row.retry_at = self.now + timedelta(seconds=min(2**row.restarts, MAX_BACKOFF))
            row.save(update_fields=["retry_at", "restarts", "updated_at"])
        wait = (row.retry_at - self.now).total_seconds()
        if wait > 0:
            # A short wait is waited out here; a long one is left to the reconcile.
            if wait <= SHORT_WAIT:
                self.wait(wait)
            return
        self.restarts.append(row)

    def plan_batch(self, candidates, by_slot):
        """Pick the next slots to update, `parallelism` at a time, `delay` apart."""
        if not candidates or self.target.status == Deployment.Status.FAILED:
            return
        target_rows = [r for r in self.rows if r.deployment_id == self.target.pk]
        in_flight = sum(1 for r in target_rows if not self.proven(r))
        room = self.update["parallelism"] - in_flight
        settled = [r.ready_at for r in target_rows if self.proven(r)]
        if settled and self.update["delay"]:
            next_batch = max(settled) + timedelta(
                seconds=self.update["monitor"] + self.update["delay"]
            )
            room = room if self.now >= next_batch else 0
        if room <= 0:
            self.wait(POLL)
            return
        # A new container cannot bind a fixed host port beside the old one on its node.
        stop_first = self.update["order"] == "stop-first" or containers.published_ports(self.spec)
        for slot in candidates[:room]:
            self.new_slots.append(slot)
            if stop_first:
                self.removals += by_slot[slot]
            else:
                self.replaced += by_slot[slot]

    # --- outcomes ----------------------------------------------------------------------

    def begin_rollout(self):
        started = Deployment.objects.filter(
            pk=self.target.pk, status=Deployment.Status.PENDING
        ).update(status=Deployment.Status.RUNNING, started_at=self.now)
        if started:
            self.target.refresh_from_db()
            live.broadcast("deployment", self.target.pk)

    @transaction.atomic
    def fail_rollout(self, row, reason, keep_old):
        """The new revision failed: roll back to the last good one, or stop and report."""
        target = Deployment.objects.select_for_update().get(pk=self.target.pk)
        if target.status != Deployment.Status.RUNNING:
            return
        good = self.previous_good()
        target.finished_at = self.now
        if self.update["failure_action"] == "rollback" and good:
            target.status = Deployment.Status.ROLLED_BACK
            target.reason = f"{reason}; rolled back to revision {good.revision}"
            good.resume()
            Service.objects.filter(pk=self.service.pk).update(
                current_deployment=good, generation=F("generation") + 1
            )
            kind = EventKind.DEPLOYMENT_ROLLED_BACK
        else:
            target.status = Deployment.Status.FAILED
            halted = "update paused" if self.update["failure_action"] == "pause" else "failed"
            target.reason = f"{reason}; {halted}"
            kind = EventKind.DEPLOYMENT_FAILED
        target.save()
        live.broadcast("deployment", target.pk)
        live.broadcast("service", self.service.name)
        Event.objects.record(
            kind,
            service=self.service,
            old=f"revision {target.revision}",
            new=f"revision {good.revision}" if kind == EventKind.DEPLOYMENT_ROLLED_BACK else "",
            reason=target.reason,
        )
        if keep_old:
            self.removals.append(row)
        self.replan = True

    def finish_rollout(self, by_slot):
        """Record progress, and success once every slot runs a proven replica of the target."""
        if not self.rolling_out:
            return
        count = self.service.replicas
        done = sum(
            1
            for slot in range(1, count + 1)
            if len(by_slot[slot]) == 1
            and by_slot[slot][0].deployment_id == self.target.pk
            and self.proven(by_slot[slot][0])
        )
        extra = any(r.slot > count for r in self.rows)
        progress = 100 if count == 0 else done * 100 // count
        if done == count and not extra and not (self.new_slots or self.restarts):
            updated = Deployment.objects.filter(
                pk=self.target.pk, status=Deployment.Status.RUNNING
            ).update(status=Deployment.Status.SUCCEEDED, progress=100, finished_at=self.now)
            if updated:
                live.broadcast("deployment", self.target.pk)
                live.broadcast("service", self.service.name)
                Event.objects.record(
                    EventKind.DEPLOYMENT_SUCCEEDED,
                    service=self.service,
                    new=f"revision {self.target.revision}",
                    reason=f"{count} replica(s) serving",
                )
        else:
            moved = Deployment.objects.filter(pk=self.target.pk).exclude(progress=progress)
            if moved.update(progress=progress):
                live.broadcast("deployment", self.target.pk)
            self.wait(POLL)

    def report_placement(self, reason):
        """A plan that cannot be met: say so once on the deployment and as an Event, together."""
        with transaction.atomic():
            updated = (
                Deployment.objects.filter(pk=self.target.pk)
                .exclude(reason=reason)
                .update(reason=reason)
            )
            if updated:
                live.broadcast("deployment", self.target.pk)
                Event.objects.record(
                    EventKind.PLACEMENT_FAILED, service=self.service, reason=reason
                )

    # --- acting ------------------------------------------------------------------------

    def execute(self):
        """Remove what goes, then place and start what comes, all nodes at once."""
        removals = list({r.pk: r for r in self.removals}.values())
        containers.run_parallel([(containers.remove, r) for r in removals])
        wanted = len(self.new_slots) + len(self.restarts)
        if not wanted:
            return
        try:
            # Replicas on their way out count as gone, so the new ones spread evenly.
            leaving = self.restarts + self.replaced
            picks = containers.place(self.nodes, self.service, self.spec, wanted, leaving)
        except scheduling.PlacementError as exc:
            self.report_placement(str(exc))
            self.new_slots, self.restarts = [], []
            return
        calls = []
        for slot, node in zip(self.new_slots, picks, strict=False):
            row = Replica.objects.create(
                service=self.service, deployment=self.target, slot=slot, node=node
            )
            row.service, row.deployment, row.node = self.service, self.target, node
            live.broadcast_replica(row)
            calls.append((containers.start, row))
        for row, node in zip(self.restarts, picks[len(self.new_slots) :], strict=True):
            calls.append((containers.replace, row, row.node, row.container_id))
            self.record_restart(row, node)
            containers.reset_for_restart(row, node)
        containers.run_parallel(calls)

    def record_restart(self, row, node):
        if row.restart_requested:
            return
        if row.state == Replica.State.MISSING:
            kind, reason = EventKind.REPLICA_RESCHEDULED, f"slot {row.slot} {row.error}"
        else:
            row.restarts += 1
            kind, reason = None, ""
            if row.restarts == CRASH_LOOP_AFTER:
                kind = EventKind.REPLICA_CRASH_LOOPING
                reason = f"slot {row.slot} {self.broken(row)}, restarted {row.restarts} times"
        if kind:
            Event.objects.record(
                kind, service=self.service, node=node, old=str(row.node or ""), reason=reason
            )
