"""The watch process alone (no beat): it follows events and it alone keeps nodes' liveness.

Liveness here comes only from the watch's pings, each node every second: a node
that stops answering is unreachable within about two seconds and down only once
it has been silent for FLEET_NODE_DOWN_AFTER (10 s at the defaults).
"""

import contextlib
import threading
import time

import docker
import pytest
from django.conf import settings

from fleet import engine
from fleet.models import Event, EventKind, Node
from tests.integration.faults import partitioned
from tests.system import wait_for

pytestmark = pytest.mark.lab


def status_of(name):
    return Node.objects.get(name=name).status


def transitions(name):
    rows = Event.objects.filter(kind=EventKind.NODE_STATUS_CHANGED, node_name=name)
    return [(e.old, e.new) for e in rows.order_by("created_at", "id")]


@pytest.fixture
def watched_lab(lab, lab_nodes, watch_process):
    # Without beat, only the watch's pings can make the nodes ready, and only its
    # resync on opening a node's stream reads the engine's info.
    wait_for(
        lambda: set(Node.objects.values_list("status", flat=True)) == {"ready"},
        20,
        message="the watch to find every node answering",
    )
    wait_for(
        lambda: not Node.objects.filter(containers_running__isnull=True).exists(),
        20,
        message="the watch to resync every node",
    )
    return lab


def client_of(lab, name):
    """A client of the node's engine over its unix socket, which no partition cuts."""
    entry = next(n for n in lab.status()["nodes"] if n["name"] == name)
    return docker.DockerClient(base_url=f"unix://{entry['socket']}", version="auto", timeout=60)


def running(name):
    return Node.objects.get(name=name).containers_running


def running_count_follows(lab, name, within):
    """Start and remove a container on the node; its running count must follow within."""
    client = client_of(lab, name)
    before = Node.objects.get(name=name).containers_running
    container = client.containers.run(lab.status()["images"]["demo_v1"], detach=True)
    started = time.monotonic()
    try:
        wait_for(
            lambda: Node.objects.get(name=name).containers_running == before + 1,
            within,
            0.05,
            message="the running count to go up",
        )
        return time.monotonic() - started
    finally:
        container.remove(force=True)
        client.close()


def test_a_new_container_shows_on_its_node_without_waiting_for_a_check(watched_lab):
    before = running("lab-3")
    running_count_follows(watched_lab, "lab-3", 5)
    wait_for(
        lambda: running("lab-3") == before,
        5,
        message="the running count to go down",
    )


def test_each_engine_sends_the_events_fleet_acts_on_and_none_of_its_health_check_execs(
    lab, lab_nodes
):
    # A health check every half second is three exec events per check, which the stream
    # must leave out, while the container's own events, health included, come through.
    image = lab.status()["images"]["demo_v1"]
    versions = set()
    for node in lab_nodes:
        client = client_of(lab, node.name)
        stream = engine.events(node)
        timer = threading.Timer(20, stream.close)  # no healthy verdict: fail, don't hang
        timer.start()
        container = client.containers.run(
            image,
            detach=True,
            labels={"fleet.test": "events"},
            healthcheck={
                "test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"],
                "interval": 500_000_000,
            },
        )
        actions = []
        try:
            for event in stream:
                if event["Actor"]["ID"] == container.id:
                    actions.append(event["Action"])
                    if event["Action"] == "health_status: healthy":
                        time.sleep(1.2)  # two more checks: their execs would be next
                        container.remove(force=True)
                    if event["Action"] == "destroy":
                        break
            versions.add(client.version()["Version"])
        finally:
            timer.cancel()
            stream.close()
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
            client.close()
        assert actions[:3] == ["create", "start", "health_status: healthy"], (node, actions)
        assert actions[-2:] == ["die", "destroy"], (node, actions)
        assert not [a for a in actions if a.startswith("exec_")], (node, actions)
    assert len(versions) > 1, f"one engine version in the lab: {versions}"


def test_a_dead_engine_is_unreachable_at_once_and_down_only_after_its_silence(watched_lab):
    watched_lab.kill_node("lab-2")
    killed_at = time.monotonic()
    try:
        wait_for(lambda: status_of("lab-2") == "unreachable", 5, 0.05, message="unreachable")
        unreachable_after = time.monotonic() - killed_at
        wait_for(lambda: status_of("lab-2") == "down", 20, 0.05, message="lab-2 to be down")
        down_after = time.monotonic() - killed_at
        print(f"killed: unreachable after {unreachable_after:.1f}s, down after {down_after:.1f}s")
        assert unreachable_after < 2.5
        limit = settings.FLEET_NODE_DOWN_AFTER
        assert limit - 0.5 <= down_after <= limit + 2, f"down after {down_after:.1f}s"
        assert transitions("lab-2")[-2:] == [("ready", "unreachable"), ("unreachable", "down")]
        down = Event.objects.get(kind=EventKind.NODE_STATUS_CHANGED, node_name="lab-2", new="down")
        assert "cannot connect" in down.reason and "no answer for 1" in down.reason
    finally:
        watched_lab.start_node("lab-2")
    wait_for(lambda: status_of("lab-2") == "ready", 15, message="lab-2 to come back")


def test_a_silent_partition_is_down_in_time_and_healed_its_stream_follows_again(watched_lab):
    image = watched_lab.status()["images"]["demo_v1"]
    client = client_of(watched_lab, "lab-2")
    client.images.pull(image)  # cut off, it could not pull it
    with partitioned(watched_lab, "lab-2"):
        cut_at = time.monotonic()
        wait_for(lambda: status_of("lab-2") == "unreachable", 6, 0.05, message="unreachable")
        unreachable_after = time.monotonic() - cut_at
        wait_for(lambda: status_of("lab-2") == "down", 20, 0.05, message="lab-2 to be down")
        down_after = time.monotonic() - cut_at
        print(f"partition: unreachable after {unreachable_after:.1f}s, down {down_after:.1f}s")
        assert down_after <= settings.FLEET_NODE_DOWN_AFTER + 2, f"down after {down_after:.1f}s"
        assert "no answer within" in Node.objects.get(name="lab-2").last_error
        assert {status_of("lab-1"), status_of("lab-3")} == {"ready"}
        # Started while cut off: only a resync after the partition can tell Fleet.
        before = running("lab-2")
        container = client.containers.run(image, detach=True)
    try:
        healed_at = time.monotonic()
        wait_for(lambda: status_of("lab-2") == "ready", 10, 0.05, message="lab-2 to come back")
        print(f"healed: ready after {time.monotonic() - healed_at:.1f}s")
        wait_for(lambda: running("lab-2") == before + 1, 10, 0.05, message="lab-2 resynced")
        print(f"healed: resynced after {time.monotonic() - healed_at:.1f}s")
        # Its events stream is open again: a container event is reflected within a second.
        container.remove(force=True)
        removed = time.monotonic()
        wait_for(lambda: running("lab-2") == before, 5, 0.05, message="the count to go down")
        took = time.monotonic() - removed
        assert took < 1.0, f"a container event reflected after {took:.2f}s"
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
        client.close()
