"""Node faults at the default settings, with the watch: what moves, and when.

Nine replicas of `web`, three per node. Every test ends converged and counts the
replicas that moved (replica.rescheduled events): a node that still answers its
pings, or is silent for less than FLEET_NODE_DOWN_AFTER, or is one of most nodes
going silent at once, moves nothing; a node silent for longer moves its three.
"""

import os
import signal
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from fleet.models import Event, EventKind, Node, Replica
from tests.integration.faults import hanging_registry, partitioned
from tests.integration.test_engine_faults import engine_pid, serving_elsewhere
from tests.integration.test_engine_faults import nine as nine_fixture
from tests.system import wait_for

nine = nine_fixture  # the same nine replicas of `web`, three per node, with the watch

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

DOWN_AFTER = settings.FLEET_NODE_DOWN_AFTER


def moves(service="web"):
    return Event.objects.filter(kind=EventKind.REPLICA_RESCHEDULED, service_name=service).count()


def node_changes(after_id):
    rows = Event.objects.filter(kind=EventKind.NODE_STATUS_CHANGED, pk__gt=after_id).order_by("id")
    return [f"{e.node_name or 'fleet'}: {e.old} -> {e.new} ({e.reason})" for e in rows]


def last_event_id():
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def status_of(name):
    return Node.objects.get(name=name).status


def containers_of(service="web"):
    return set(Replica.objects.filter(service__name=service).values_list("container_id", flat=True))


def test_a_silent_partition_moves_the_node_s_replicas_within_the_bound(nine):
    with partitioned(nine.lab, "lab-2"):
        cut = time.monotonic()
        wait_for(lambda: status_of("lab-2") == "down", DOWN_AFTER + 10, 0.05, message="down")
        down_after = time.monotonic() - cut
        wait_for(
            lambda: serving_elsewhere("lab-2") == list(range(1, 10)), 30, 0.05, message="moved"
        )
        back_after = time.monotonic() - cut
        print(f"partition: down after {down_after:.1f}s, nine serving after {back_after:.1f}s")
        assert down_after <= DOWN_AFTER + 2, f"down after {down_after:.1f}s"
        assert back_after - down_after <= 3, f"moved {back_after - down_after:.1f}s after down"
        assert moves() == 3
        nine.converged("web", 9, skip={"lab-2"})
    wait_for(lambda: status_of("lab-2") == "ready", 20, message="lab-2 to be ready")
    nine.converged("web", 9)
    assert moves() == 3  # nothing bounces back to lab-2
    assert not Replica.objects.filter(node__name="lab-2").exists()


def test_a_freeze_shorter_than_the_down_period_moves_nothing(nine):
    before, mark = containers_of(), last_event_id()
    pid = engine_pid(nine, "lab-2")
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: status_of("lab-2") == "unreachable", 6, message="lab-2 unreachable")
        time.sleep(DOWN_AFTER / 2)
        assert status_of("lab-2") == "unreachable"
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: status_of("lab-2") == "ready", 10, message="lab-2 to be ready")
    nine.converged("web", 9)
    assert moves() == 0
    assert containers_of() == before
    assert [c.split(" (")[0] for c in node_changes(mark)] == [
        "lab-2: ready -> unreachable",
        "lab-2: unreachable -> ready",
    ]


def test_most_nodes_silent_at_once_move_nothing_and_say_so_once(nine):
    before, mark = containers_of(), last_event_id()
    with partitioned(nine.lab, "lab-2"):
        with partitioned(nine.lab, "lab-1"):
            wait_for(
                lambda: status_of("lab-1") == status_of("lab-2") == "unreachable",
                6,
                message="lab-1 and lab-2 unreachable",
            )
            time.sleep(DOWN_AFTER + 3)  # long past the down period
            assert {status_of("lab-1"), status_of("lab-2")} == {"unreachable"}
            assert Node.objects.get(name="lab-1").damped
            assert "most nodes stopped answering" in Node.objects.get(name="lab-2").last_error
            assert status_of("lab-3") == "ready"
        # lab-1 answers first: lab-2, silent far past the down period, is not marked
        # down at its next ping; its silence counts from when most answered again.
        wait_for(lambda: status_of("lab-1") == "ready", 10, 0.05, message="lab-1 ready")
        healed = timezone.now()
        time.sleep(3)
        lab2 = Node.objects.get(name="lab-2")
        assert (lab2.status, lab2.damped) == ("unreachable", False)
        assert lab2.unreachable_since >= healed - timedelta(seconds=2)
    wait_for(
        lambda: {status_of(n) for n in ("lab-1", "lab-2", "lab-3")} == {"ready"},
        15,
        message="every node ready again",
    )
    nine.converged("web", 9)
    assert moves() == 0
    assert containers_of() == before
    changes = node_changes(mark)
    fleet_wide = [c for c in changes if c.startswith("fleet:")]
    assert len(fleet_wide) == 1, changes
    assert "2 of 3 nodes stopped answering at once (lab-1, lab-2)" in fleet_wide[0]
    assert not [c for c in changes if "-> down" in c], changes
    assert not Node.objects.filter(damped=True).exists()


def test_unpullable_and_hanging_images_beside_a_healthy_service_move_nothing(nine):
    """One service's image is not on the registry; another's registry accepts connections
    and never answers, so pulls hang and keep the engines busy. Neither is any node's
    fault: no node changes status and no replica of `web` moves."""
    before, mark = containers_of(), last_event_id()
    with hanging_registry(nine.lab) as silent:
        missing = nine.images["demo_v1"].replace("/fleet/demo:", "/fleet/missing:")
        nine.create("ghost", image=missing, replicas=3, update={"monitor": 0})
        nine.create("stall", image=f"{silent}/fleet/demo:1", replicas=3, update={"monitor": 0})
        started, worst_info = time.monotonic(), 0.0
        while time.monotonic() - started < 2 * DOWN_AFTER + 5:
            for client in nine.engines.values():
                began = time.monotonic()
                client.info()
                worst_info = max(worst_info, time.monotonic() - began)
            time.sleep(1)
        print(f"while pulls hang: slowest info {worst_info:.2f}s")
        assert node_changes(mark) == []
        assert set(Node.objects.values_list("status", flat=True)) == {"ready"}
        errors = set(Replica.objects.filter(service__name="ghost").values_list("error", flat=True))
        wanted = f"cannot pull {missing}: registry {nine.lab.registry} does not have it"
        assert any(e.startswith(wanted) for e in errors), errors
        # Still pulling (until FLEET_PULL_TIMEOUT): nothing of `stall` serves.
        assert not [r for r in Replica.objects.filter(service__name="stall") if r.serving]
        for name in ("ghost", "stall"):
            assert nine.api.delete(f"/api/services/{name}/").status_code in (202, 204)
    nine.converged("web", 9)
    assert moves() == 0
    assert containers_of() == before
    assert node_changes(mark) == []
