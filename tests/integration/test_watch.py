"""The watch process alone (no beat): node events reach the database within moments."""

import time

import pytest

from fleet.models import Event, EventKind, Node
from tests.integration.conftest import lab_engine, wait_for

pytestmark = pytest.mark.lab


def status_of(name):
    return Node.objects.get(name=name).status


@pytest.fixture
def watched_lab(lab, lab_nodes, watch_process):
    # Without beat, only the watch's resync on connect can make the nodes ready.
    wait_for(
        lambda: set(Node.objects.values_list("status", flat=True)) == {"ready"},
        20,
        message="the watch to check every node",
    )
    return lab


def test_a_new_container_shows_on_its_node_without_waiting_for_a_check(watched_lab):
    entry = next(n for n in watched_lab.status()["nodes"] if n["name"] == "lab-3")
    client = lab_engine(entry)
    before = Node.objects.get(name="lab-3").containers_running
    container = client.containers.run(watched_lab.status()["images"]["demo_v1"], detach=True)
    try:
        wait_for(
            lambda: Node.objects.get(name="lab-3").containers_running == before + 1,
            5,
            message="the running count to go up",
        )
    finally:
        container.remove(force=True)
        client.close()
    wait_for(
        lambda: Node.objects.get(name="lab-3").containers_running == before,
        5,
        message="the running count to go down",
    )


def test_a_dead_engine_is_noticed_from_its_broken_stream(watched_lab):
    watched_lab.kill_node("lab-2")
    killed_at = time.monotonic()
    try:
        wait_for(lambda: status_of("lab-2") == "down", 10, message="lab-2 to be marked down")
        took = time.monotonic() - killed_at
        assert took < 5, f"noticed after {took:.1f}s"
        assert Event.objects.filter(
            kind=EventKind.NODE_STATUS_CHANGED, node_name="lab-2", old="ready", new="down"
        ).exists()
    finally:
        watched_lab.start_node("lab-2")
    wait_for(lambda: status_of("lab-2") == "ready", 15, message="lab-2 to come back")
