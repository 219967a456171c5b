"""Node health against real engines, a real worker and beat: down, back, and frozen."""

import os
import signal
import time

import pytest

from fleet.models import Event, EventKind, Node
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.lab


def statuses():
    return dict(Node.objects.values_list("name", "status"))


def all_ready():
    return set(statuses().values()) == {Node.Status.READY}


@pytest.fixture
def ready_lab(lab, lab_nodes, celery_beat):
    wait_for(all_ready, 20, message="every lab node to be ready")
    return lab


def test_registered_nodes_report_their_engine(ready_lab):
    node = Node.objects.get(name="lab-1")
    assert node.engine_version.startswith("20.10")
    assert node.cpus >= 1
    assert node.memory_bytes > 0
    assert node.containers_running is not None
    assert node.last_seen_at is not None
    registered = Event.objects.filter(kind=EventKind.NODE_STATUS_CHANGED, node_name="lab-1")
    assert registered.filter(old="unknown", new="ready").exists()


def test_killing_an_engine_marks_its_node_down_and_restarting_brings_it_back(ready_lab):
    ready_lab.kill_node("lab-2")
    killed_at = time.monotonic()
    try:
        wait_for(lambda: statuses()["lab-2"] == "down", 15, message="lab-2 to be marked down")
        took = time.monotonic() - killed_at
        # Two failed checks one second apart, plus scheduling slack.
        assert took < 10, f"marked down after {took:.1f}s"
        down = Event.objects.get(kind=EventKind.NODE_STATUS_CHANGED, node_name="lab-2", new="down")
        assert down.old == "ready"
        assert down.actor == "system"
        assert "cannot connect" in down.reason
        assert Node.objects.get(name="lab-2").last_error
        assert statuses()["lab-1"] == statuses()["lab-3"] == "ready"
    finally:
        ready_lab.start_node("lab-2")
    wait_for(lambda: statuses()["lab-2"] == "ready", 15, message="lab-2 to be ready again")
    back = Event.objects.filter(kind=EventKind.NODE_STATUS_CHANGED, node_name="lab-2").first()
    assert (back.old, back.new) == ("down", "ready")
    assert Node.objects.get(name="lab-2").last_error == ""


def test_a_frozen_engine_does_not_delay_checks_of_the_others(ready_lab):
    """With a 3 s timeout and a 1 s interval, serial checks would leave gaps of 3 s or more."""
    pid = next(n["pid"] for n in ready_lab.status()["nodes"] if n["name"] == "lab-1")
    os.kill(pid, signal.SIGSTOP)
    try:
        seen = {"lab-2": [], "lab-3": []}
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            rows = Node.objects.filter(name__in=seen).values_list("name", "last_seen_at")
            for name, last_seen in rows:
                if not seen[name] or seen[name][-1] != last_seen:
                    seen[name].append(last_seen)
            time.sleep(0.05)
        for name, times in seen.items():
            gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
            assert len(gaps) >= 4, f"{name} checked only {len(times)} times in 8 s"
            assert max(gaps) < 2.5, f"{name} went {max(gaps):.1f}s between checks"
        frozen = Node.objects.get(name="lab-1")
        assert frozen.status == "down"
        assert "no answer within 3 s" in frozen.last_error
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: statuses()["lab-1"] == "ready", 15, message="lab-1 to be ready again")
