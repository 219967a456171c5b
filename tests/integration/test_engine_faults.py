"""A node's engine killed or frozen, in steady state and mid-rollout, with the watch running.

Every test ends with the service converged (fleet.converged): the desired count
serving, one container per slot, and no Fleet container that no replica claims.
"""

import os
import signal
import time

import pytest

from fleet.models import Deployment, Event, EventKind, Node, Replica
from tests.integration.test_services_deploy import HEALTH, PORT
from tests.system import wait_for

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

UPDATE = {"parallelism": 1, "monitor": 1}


@pytest.fixture
def nine(fleet, watch_process):
    """Nine healthy replicas of demo:1, three on each node, with the watch following them."""
    fleet.create("web", replicas=9, healthcheck=HEALTH, ports=PORT, update=UPDATE)
    fleet.converged("web", 9)
    assert Replica.objects.filter(node__name="lab-2").count() == 3
    return fleet


def serving_elsewhere(away):
    """Slots serving on nodes other than `away`."""
    rows = Replica.objects.filter(service__name="web").exclude(node__name=away)
    return sorted(r.slot for r in rows.select_related("node") if r.serving)


def wait_moved(away, timeout=60):
    wait_for(
        lambda: serving_elsewhere(away) == list(range(1, 10)),
        timeout,
        message=f"every slot to serve off {away}",
    )


def status_of(name):
    return Node.objects.get(name=name).status


def start_rollout(fleet):
    """Deploy demo:2 and return its deployment once some, but not all, slots run it."""
    body = {"image": fleet.images["demo_v2"]}
    response = fleet.api.post("/api/services/web/deploy", body, format="json")
    assert response.status_code == 202, response.json()
    wait_for(
        lambda: Replica.objects.filter(service__name="web", deployment__revision=2).count() >= 2,
        60,
        message="the rollout to be under way",
    )
    deployment = Deployment.objects.get(pk=response.json()["id"])
    assert deployment.status == Deployment.Status.RUNNING
    return deployment


def engine_pid(fleet, name):
    return next(n["pid"] for n in fleet.lab.status()["nodes"] if n["name"] == name)


def test_an_engine_killed_in_steady_state_loses_no_slot_and_leaves_no_orphan(nine):
    nine.lab.kill_node("lab-2")
    try:
        wait_moved("lab-2")
        assert status_of("lab-2") == "down"
        moved = Event.objects.filter(kind=EventKind.REPLICA_RESCHEDULED, service_name="web")
        assert moved.count() == 3
        nine.converged("web", 9, skip={"lab-2"})
    finally:
        nine.lab.start_node("lab-2")
    # Back, the engine still holds the moved replicas' old containers: they go as orphans.
    wait_for(lambda: status_of("lab-2") == "ready", 20, message="lab-2 to be ready")
    nine.converged("web", 9)
    assert not Replica.objects.filter(node__name="lab-2").exists()


def test_an_engine_killed_mid_rollout_does_not_stop_or_fail_the_rollout(nine):
    deployment = start_rollout(nine)
    nine.lab.kill_node("lab-2")
    try:
        nine.wait_deployment(deployment.pk, "succeeded", timeout=120)
        nine.converged("web", 9, revision=2, skip={"lab-2"})
    finally:
        nine.lab.start_node("lab-2")
    wait_for(lambda: status_of("lab-2") == "ready", 20, message="lab-2 to be ready")
    nine.converged("web", 9, revision=2)


def test_a_frozen_engine_is_marked_down_and_its_replicas_move_without_delaying_others(nine):
    pid = engine_pid(nine, "lab-2")
    os.kill(pid, signal.SIGSTOP)
    try:
        before = dict(Node.objects.values_list("name", "last_seen_at"))
        wait_for(lambda: status_of("lab-2") == "down", 30, message="lab-2 to be marked down")
        assert "no answer within" in Node.objects.get(name="lab-2").last_error
        wait_moved("lab-2")
        moved = Event.objects.filter(kind=EventKind.REPLICA_RESCHEDULED, service_name="web")
        assert moved.count() == 3
        nine.converged("web", 9, skip={"lab-2"})
        # The other nodes were checked all along, and are still ready.
        after = dict(Node.objects.values_list("name", "last_seen_at"))
        for name in ("lab-1", "lab-3"):
            assert after[name] > before[name]
            assert status_of(name) == "ready"
    finally:
        os.kill(pid, signal.SIGCONT)
    # Thawed, lab-2 still runs its three old containers: they are orphans now.
    wait_for(lambda: status_of("lab-2") == "ready", 30, message="lab-2 to be ready")
    nine.converged("web", 9)


def test_a_frozen_engine_mid_rollout_does_not_hold_up_the_rollout(nine):
    deployment = start_rollout(nine)
    pid = engine_pid(nine, "lab-2")
    os.kill(pid, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        wait_for(lambda: status_of("lab-2") == "down", 30, message="lab-2 to be marked down")
        nine.wait_deployment(deployment.pk, "succeeded", timeout=120)
        nine.converged("web", 9, revision=2, skip={"lab-2"})
        print(f"rollout done {time.monotonic() - frozen:.1f}s after the freeze")
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: status_of("lab-2") == "ready", 30, message="lab-2 to be ready")
    nine.converged("web", 9, revision=2)
