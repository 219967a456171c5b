"""The watch's per-burst refresh of a node's info (fleet/nodes/watch.py Bursts)."""

import threading
import time

from fleet.nodes.watch import Bursts


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_burst_of_requests_runs_the_action_once():
    runs = []
    bursts = Bursts(lambda: runs.append(time.monotonic()), 0.05, "test")
    for _ in range(20):
        bursts.request()
    wait_until(lambda: runs)
    time.sleep(0.3)
    assert len(runs) == 1


def test_a_request_while_the_action_runs_gets_a_run_of_its_own_after_it():
    # A container is created (a request), the info is being read (the run), and the
    # container starts meanwhile (another request): the start must be read too.
    inside, release = threading.Event(), threading.Event()
    runs = []

    def action():
        runs.append(time.monotonic())
        if len(runs) == 1:
            inside.set()
            release.wait(5)

    bursts = Bursts(action, 0.02, "test")
    bursts.request()
    assert inside.wait(5)
    bursts.request()
    release.set()
    wait_until(lambda: len(runs) == 2)
    time.sleep(0.2)
    assert len(runs) == 2


def test_a_failing_action_does_not_stop_later_bursts():
    runs = []

    def action():
        runs.append(1)
        raise RuntimeError("engine gone")

    bursts = Bursts(action, 0.01, "test")
    bursts.request()
    wait_until(lambda: len(runs) == 1)
    wait_until(lambda: not bursts.running)
    bursts.request()
    wait_until(lambda: len(runs) == 2)
