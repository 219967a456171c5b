"""Deploy, scale, roll back and heal one service, as idempotent looks.

converge(service_id) claims the service with a lease and looks again and again
until what runs equals what is desired. Each look reads the desired state
afresh (so the later of two scale requests wins), syncs the replica rows from
the nodes, and takes the next steps that the planner (planner.py, pure, making a
plan.py Plan) names: the deployment transitions (transitions.py) and the engine
work (executor.py).
All it needs to go on lives in the database and in the containers' labels, so
a converge killed at any point is finished by the next one, which the reconcile
starts within seconds.
"""

import logging
import time

from fleet.converge import containers, executor, inflight, wake
from fleet.converge.inflight import STARTS_WAIT
from fleet.converge.lease import Lease, LeaseLost
from fleet.models import Service
from fleet.services.spec import MAX_DRAIN

log = logging.getLogger(__name__)

RUN_LIMIT = 180  # seconds one converge looks before handing over
# A converge waits for the drains and removals it began before it lets its lease go, so
# that no other process removes a container while it drains (a converge cut short would
# let it go at once): its task may run for its looks, the longest drain a spec may ask
# for, then the old container's stop and removal calls.
TASK_SOFT_LIMIT = RUN_LIMIT + MAX_DRAIN + STARTS_WAIT + containers.STOP_TIMEOUT + 2 * 60


def converge(service_id: int) -> str:
    """Bring one service to its desired state; return a word on how it ended."""
    lease = Lease(service_id)
    if not lease.claim():
        return "busy"
    # A rolling update's starts and removals run on while the next look reads; each one
    # that ends wakes the loop. None outlives the converge.
    background = inflight.Calls(on_done=lambda: wake.nudge(service_id))
    try:
        deadline = time.monotonic() + RUN_LIMIT
        while time.monotonic() < deadline:
            lease.ensure()
            rows = Service.objects.select_related("current_deployment").filter(pk=service_id)
            service = rows.first()
            if service is None:
                return "gone"
            if service.deleting:
                background.wait()
                executor.teardown(service, lease)
                return "deleted"
            settled, pause = executor.look(service, lease, background)
            if settled and not changed_since(service_id, service.generation):
                return "converged"
            wake.wait(service_id, pause)  # or less, once a replica or request changes
        return "continues later"
    except LeaseLost:
        return "lease lost"
    finally:
        try:
            background.wait()
        except Exception:  # the converge's own outcome (or error) is what it reports
            log.exception("an engine call of service %s's converge failed", service_id)
        background.close()
        lease.release()


def changed_since(service_id: int, generation: int) -> bool:
    """Whether the desired state changed since it was read (a request came in meanwhile)."""
    return Service.objects.filter(pk=service_id).exclude(generation=generation).exists()
