"""Node loss with the watch running: its pings find a killed engine at once.

Beat checks the nodes only every minute here, so down-detection can come from
the watch alone: it pings every node every second, and a node is still down only
once it has not answered for FLEET_NODE_DOWN_AFTER seconds.
"""

import time

import pytest
from django.conf import settings

from fleet.models import Event, EventKind, Node, Replica
from tests.integration.test_services_deploy import PORT
from tests.system import wait_for

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

BEAT_CHECK_INTERVAL = 60


@pytest.fixture
def beat_env(process_env):
    return {**process_env, "FLEET_NODE_CHECK_INTERVAL": str(BEAT_CHECK_INTERVAL)}


def test_a_killed_engine_s_replicas_are_back_elsewhere_in_seconds(fleet, watch_process):
    fleet.create("web", replicas=9, ports=PORT, update={"monitor": 0})
    fleet.converged("web", 9)
    assert Replica.objects.filter(node__name="lab-2").count() == 3
    fleet.lab.kill_node("lab-2")
    killed = time.monotonic()
    try:
        wait_for(lambda: Node.objects.get(name="lab-2").status == "down", 30, message="lab-2 down")
        down_after = time.monotonic() - killed
        wait_for(
            lambda: (
                sorted(r.slot for r in Replica.objects.exclude(node__name="lab-2") if r.serving)
                == list(range(1, 10))
            ),
            30,
            message="every slot to run on lab-1 or lab-3",
        )
        back_after = time.monotonic() - killed
        print(f"lab-2 down after {down_after:.1f}s, nine replicas back after {back_after:.1f}s")
        # Beat alone could not have marked it down before its check a minute on.
        limit = settings.FLEET_NODE_DOWN_AFTER
        assert limit - 0.5 <= down_after <= limit + 2, f"marked down after {down_after:.1f}s"
        assert back_after - down_after <= 3, f"back {back_after - down_after:.1f}s after down"
        failures = Event.objects.get(
            kind=EventKind.NODE_STATUS_CHANGED, node_name="lab-2", new="down"
        )
        assert "cannot connect" in failures.reason
        fleet.converged("web", 9, skip={"lab-2"})
    finally:
        fleet.lab.start_node("lab-2")
    wait_for(lambda: Node.objects.get(name="lab-2").status == "ready", 20, message="lab-2 back")
    fleet.converged("web", 9)


def test_a_node_lost_during_a_rolling_update_has_its_old_replicas_back_elsewhere_in_seconds(
    fleet, watch_process
):
    fleet.create("web", replicas=6, update={"monitor": 0})
    fleet.converged("web", 6)
    # One slot at a time, a minute apart: the update is under way throughout, and the
    # lost node's slots would wait their turn for minutes.
    response = fleet.api.post(
        "/api/services/web/deploy",
        {"image": fleet.images["demo_v2"], "update": {"parallelism": 1, "delay": 60}},
        format="json",
    )
    assert response.status_code == 202
    lost = Replica.objects.get(service__name="web", slot=6).node.name
    fleet.lab.kill_node(lost)
    try:
        wait_for(lambda: Node.objects.get(name=lost).status == "down", 30, message="down")
        down = time.monotonic()
        wait_for(
            lambda: (
                {r.slot for r in Replica.objects.exclude(node__name=lost) if r.serving}
                == set(range(1, 7))
            ),
            10,
            message=f"every slot to run off {lost}",
        )
        assert time.monotonic() - down <= 3, f"back {time.monotonic() - down:.1f}s after down"
        assert fleet.deployment(response.json()["id"])["status"] == "running"
        # A quicker deploy ends the slow one, on the survivors.
        fleet.api.post(
            "/api/services/web/deploy", {"update": {"monitor": 0, "delay": 0}}, format="json"
        )
        fleet.converged("web", 6, skip={lost})
    finally:
        fleet.lab.start_node(lost)
    wait_for(lambda: Node.objects.get(name=lost).status == "ready", 20, message=f"{lost} back")
    fleet.converged("web", 6)
