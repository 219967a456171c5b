"""Which removals of a look go beside the new replicas' starts, and which go first."""

from fleet.converge.executor import may_go_beside
from fleet.converge.planner import Plan, Restart
from fleet.models import Deployment, Replica
from fleet.spec import default_spec

FIXED = [{"container": 80, "published": 8080, "protocol": "tcp"}]
PICKED = [{"container": 80, "published": None, "protocol": "tcp"}]


def old_replica(slot, ports=()):
    deployment = Deployment(spec=default_spec() | {"image": "demo:1", "ports": list(ports)})
    return Replica(slot=slot, deployment=deployment)


def plan_starting(*slots, restarts=()):
    plan = Plan()
    plan.new_slots = list(slots)
    plan.restarts = [Restart(row, 1) for row in restarts]
    return plan


def test_the_old_replica_of_a_slot_whose_new_one_serves_goes_beside_the_next_starts():
    spec = default_spec() | {"ports": PICKED}
    assert may_go_beside(old_replica(1, PICKED), plan_starting(3, 4), spec)


def test_the_old_replica_of_a_slot_being_started_goes_first():
    assert not may_go_beside(old_replica(3), plan_starting(3, 4), default_spec())
    broken = old_replica(5)
    assert not may_go_beside(broken, plan_starting(3, restarts=[broken]), default_spec())


def test_a_fixed_host_port_held_or_needed_makes_a_removal_go_first():
    assert not may_go_beside(old_replica(1, FIXED), plan_starting(3), default_spec())
    assert not may_go_beside(old_replica(1), plan_starting(3), default_spec() | {"ports": FIXED})
