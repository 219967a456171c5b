"""Node health against real engines, a real worker and beat: down, back, and frozen."""

import os
import signal
import time

import pytest
from django.conf import settings
from django.utils import timezone

from fleet.engine import versions
from fleet.models import Event, EventKind, Node
from tests.system import wait_for

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
    # Ready on its ping; its engine's info is asked for after that, apart.
    wait_for(
        lambda: Node.objects.get(name="lab-1").engine_version, 10, message="lab-1's engine info"
    )
    node = Node.objects.get(name="lab-1")  # on the host's engine in every lab mix
    assert node.engine_version.startswith("20.10")
    assert (node.api_version, node.api_spoken) == ("1.41", "1.41")  # Docker 20.10's own
    # What the engine says of its host, as `docker info` on it does.
    assert (node.os, node.arch) == ("linux", os.uname().machine)
    assert node.operating_system and node.kernel_version == os.uname().release
    assert node.storage_driver and node.cgroup_version in {"1", "2"}
    assert node.cpus >= 1
    assert node.memory_bytes > 0
    assert node.containers_running is not None
    assert node.last_seen_at is not None
    registered = Event.objects.filter(kind=EventKind.NODE_STATUS_CHANGED, node_name="lab-1")
    first = registered.get(old="unknown", new="ready")
    assert first.reason == "it answers its ping"  # not "again": it never answered before


def test_a_node_whose_engine_refuses_old_clients_is_spoken_to_in_a_version_it_takes(ready_lab):
    newer = [n["name"] for n in ready_lab.status()["nodes"] if n["engine"] != "host"]
    if not newer:
        pytest.skip("FLEET_LAB_ENGINES runs no newer engine in this lab")
    for name in newer:
        wait_for(lambda n=name: Node.objects.get(name=n).api_version, 10, message=f"{name} info")
        node = Node.objects.get(name=name)
        # The lab's newer engine refuses everything below 1.44 (tests/integration/test_lab.py).
        assert versions.parse(node.api_version) >= (1, 44), node.api_version
        assert node.api_spoken == versions.NEWEST
        assert not node.engine_version.startswith("20.")
        assert node.status == Node.Status.READY and not node.last_error


def test_a_killed_engine_is_unreachable_then_down_once_silent_long_enough_then_back(ready_lab):
    """Beat alone (no watch): checks every FLEET_NODE_CHECK_INTERVAL, so the kill is seen
    at the next check; a node found unreachable is pinged again when FLEET_NODE_DOWN_AFTER
    is up, so down comes that long after it went silent, never before. (3 s and 2 s are
    the slack for a worker's task latency on a busy two-core machine.)"""
    ready_lab.kill_node("lab-2")
    killed_at = timezone.now()
    try:
        wait_for(lambda: statuses()["lab-2"] != "ready", 10, message="lab-2 to be unreachable")
        assert statuses()["lab-2"] == "unreachable"
        wait_for(lambda: statuses()["lab-2"] == "down", 30, message="lab-2 to be marked down")
        changes = Event.objects.filter(kind=EventKind.NODE_STATUS_CHANGED, node_name="lab-2")
        silent = changes.get(new="unreachable")
        down = changes.get(new="down")
        assert down.old == "unreachable"
        seen = (silent.created_at - killed_at).total_seconds()
        due = (down.created_at - silent.created_at).total_seconds()
        took = f"unreachable {seen:.1f} s after the kill, down {due:.1f} s after that"
        assert seen < settings.FLEET_NODE_CHECK_INTERVAL + 3, took
        # Once unreachable, down comes when it is due, not at the beat tick after it.
        limit = settings.FLEET_NODE_DOWN_AFTER
        assert limit - 0.5 <= due < limit + 2, took
        assert (down.created_at - killed_at).total_seconds() >= limit, took
        assert down.actor == "system"
        assert "cannot connect" in down.reason
        assert Node.objects.get(name="lab-2").last_error
        assert statuses()["lab-1"] == statuses()["lab-3"] == "ready"
    finally:
        ready_lab.start_node("lab-2")
    wait_for(lambda: statuses()["lab-2"] == "ready", 15, message="lab-2 to be ready again")
    back = Event.objects.filter(kind=EventKind.NODE_STATUS_CHANGED, node_name="lab-2").first()
    assert (back.old, back.new, back.reason) == ("down", "ready", "it answers its ping again")
    node = Node.objects.get(name="lab-2")
    assert node.last_error == "" and node.unreachable_since is None


def test_a_frozen_engine_does_not_delay_checks_of_the_others(ready_lab):
    """Each check waits on a frozen engine for its ping timeout: serial checks would leave
    the others' gaps that much longer than the interval."""
    pid = next(n["pid"] for n in ready_lab.status()["nodes"] if n["name"] == "lab-1")
    os.kill(pid, signal.SIGSTOP)
    try:
        seen = {"lab-2": [], "lab-3": []}
        deadline = time.monotonic() + 3 * settings.FLEET_NODE_CHECK_INTERVAL
        while time.monotonic() < deadline:
            rows = Node.objects.filter(name__in=seen).values_list("name", "last_seen_at")
            for name, last_seen in rows:
                if not seen[name] or seen[name][-1] != last_seen:
                    seen[name].append(last_seen)
            time.sleep(0.05)
        for name, times in seen.items():
            gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
            assert len(gaps) >= 2, f"{name} checked only {len(times)} times"
            slack = settings.FLEET_NODE_PING_TIMEOUT
            assert max(gaps) < settings.FLEET_NODE_CHECK_INTERVAL + slack, f"{name}: {gaps}"
        frozen = Node.objects.get(name="lab-1")
        assert frozen.status in ("unreachable", "down")
        first = Event.objects.filter(kind=EventKind.NODE_STATUS_CHANGED, node_name="lab-1")
        assert not first.filter(old="ready", new="down").exists()
        assert first.filter(old="ready", new="unreachable").exists()
        assert "no answer within 2 s" in frozen.last_error
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: statuses()["lab-1"] == "ready", 15, message="lab-1 to be ready again")
