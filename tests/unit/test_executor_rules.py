"""Which removals of a look go beside the new replicas' starts, which go first, and when
those beside may stop."""

import contextlib
import threading
import time

from fleet.converge import inflight
from fleet.converge.executor import may_go_beside
from fleet.converge.plan import Plan, Restart
from fleet.models import Deployment, Replica
from fleet.services.spec import default_spec

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


def test_an_old_replica_beside_new_starts_is_stopped_only_once_they_have_ended():
    ended = []

    def slow_start(replica):
        time.sleep(0.2)
        ended.append(replica)

    starts = inflight.Starts(2, slow_start)
    threads = [threading.Thread(target=starts.start, args=(r,)) for r in ("a", "b")]
    for thread in threads:
        thread.start()
    starts.wait()
    assert sorted(ended) == ["a", "b"]
    for thread in threads:
        thread.join()


def test_a_start_that_fails_still_lets_the_old_replica_stop():
    def failing_start(replica):
        raise RuntimeError("engine said no")

    starts = inflight.Starts(1, failing_start)
    with contextlib.suppress(RuntimeError):
        starts.start("a")
    began = time.monotonic()
    starts.wait()
    assert time.monotonic() - began < 0.1


def test_a_start_that_hangs_holds_the_old_replica_s_stop_only_so_long(monkeypatch):
    monkeypatch.setattr(inflight, "STARTS_WAIT", 0.2)
    starts = inflight.Starts(1, None)  # its start never ends (a frozen node)
    began = time.monotonic()
    starts.wait()
    assert 0.2 <= time.monotonic() - began < 1
    began = time.monotonic()
    inflight.Starts(0, None).wait()  # nothing started beside: no wait at all
    assert time.monotonic() - began < 0.1


def test_an_old_replica_s_stop_also_waits_for_a_later_look_s_start_on_its_node():
    """A look whose calls run on may start the next slot on the node where the last
    look's old replica is about to stop: the stop waits for that start too."""
    starts = inflight.Starts(0, None)  # its own look's starts have ended
    starting, release = threading.Event(), threading.Event()

    def later_start(node_id):
        with inflight.starting.on(node_id):
            starting.set()
            release.wait(5)

    later = threading.Thread(target=later_start, args=(7,))
    later.start()
    starting.wait(5)
    began = time.monotonic()
    starts.wait(8)  # another node's start holds nothing up
    assert time.monotonic() - began < 0.1
    stopped = threading.Event()
    waiter = threading.Thread(target=lambda: (starts.wait(7), stopped.set()))
    waiter.start()
    assert not stopped.wait(0.3)
    release.set()
    assert stopped.wait(1)
    for thread in (later, waiter):
        thread.join()


def test_a_later_start_that_hangs_holds_a_stop_only_so_long(monkeypatch):
    monkeypatch.setattr(inflight, "STARTS_WAIT", 0.2)
    release = threading.Event()

    def hung_start():
        with inflight.starting.on(9):
            release.wait(5)

    hung = threading.Thread(target=hung_start)
    hung.start()
    began = time.monotonic()
    inflight.Starts(0, None).wait(9)
    assert 0.15 <= time.monotonic() - began < 1
    release.set()
    hung.join()


def test_a_converge_task_may_run_its_looks_and_the_longest_drain_a_spec_allows():
    """A converge lets its lease go only once the drains it began have ended: a task cut
    at the worker's time limit before that would leave a drain to nobody."""
    from fleet.converge import containers, runner
    from fleet.services.spec import MAX_DRAIN
    from fleet.tasks import converge_service

    needed = runner.RUN_LIMIT + MAX_DRAIN + containers.STOP_TIMEOUT
    assert converge_service.soft_time_limit >= needed
    assert converge_service.time_limit > converge_service.soft_time_limit
