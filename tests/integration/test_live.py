"""The live socket against the real channel layer (Redis): who may connect, and what arrives."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from fleet import live
from fleet.asgi import application
from fleet.models import Node, Replica, Service
from fleet.services.spec import ServiceSpecSerializer
from tests.conftest import token_for

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")  # what daphne hands on from the request


def communicator(*headers):
    return WebsocketCommunicator(application, "/ws/fleet/", headers=[HOST, *headers])


def run(scenario):
    """Run a whole conversation in one event loop, as a server would."""
    return async_to_sync(scenario)()


async def connect(*headers):
    socket = communicator(*headers)
    connected, code = await socket.connect(timeout=5)
    if not connected:
        # Refused, the application still waits for the client to go: let it end here, so
        # that nothing of it is left for the event loop to cancel when the test's loop closes.
        await socket.disconnect()
    return socket, connected, code


in_thread = database_sync_to_async


@pytest.fixture
def token(admin_user, redis_server):
    return token_for(admin_user)


def auth(key):
    return (b"authorization", f"Token {key}".encode())


def test_anonymous_connections_are_refused(redis_server):
    async def scenario():
        return await connect(ORIGIN)

    _, connected, code = run(scenario)
    assert not connected
    assert code == 4401


def test_a_bad_token_is_refused(token):
    async def scenario():
        return await connect(ORIGIN, auth("not-a-token"))

    assert not run(scenario)[1]


def test_a_foreign_origin_is_refused_even_with_a_token(token):
    async def scenario():
        return await connect((b"origin", b"http://evil.example"), auth(token))

    assert not run(scenario)[1]


def make_replica(node):
    spec = ServiceSpecSerializer(data={"name": "web", "image": "demo:1"})
    spec.is_valid(raise_exception=True)
    service = Service.objects.create(name="web")
    deployment = service.deployments.create(revision=1, spec=spec.validated_data)
    return Replica.objects.create(
        service=service,
        deployment=deployment,
        slot=3,
        node=node,
        container_id="abc",
        state="running",
    )


def test_a_client_gets_a_snapshot_then_changes_with_increasing_seq(token):
    node = Node.objects.create(name="edge-1", endpoint="tcp://127.0.0.1:2375")

    async def scenario():
        socket, connected, _ = await connect(ORIGIN, auth(token))
        assert connected
        snapshot = await socket.receive_json_from(timeout=5)
        replica = await in_thread(make_replica)(node)
        replica_id = replica.pk
        await in_thread(live.broadcast)("replica", replica_id)
        message = await socket.receive_json_from(timeout=5)
        await in_thread(replica.delete)()
        await in_thread(live.broadcast)("replica", replica_id)
        gone = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return snapshot, replica_id, message, gone

    snapshot, replica_id, message, gone = run(scenario)
    assert snapshot["type"] == "snapshot"
    assert [n["name"] for n in snapshot["data"]["nodes"]] == ["edge-1"]
    assert message["type"] == "replica"
    assert message["id"] == replica_id
    assert message["seq"] > snapshot["seq"]
    data = message["data"]
    assert (data["service"], data["slot"], data["node"], data["container_id"]) == (
        "web",
        3,
        "edge-1",
        "abc",
    )
    assert (data["state"], data["health"]) == ("running", "none")
    assert 'data-live="replica"' in message["html"]
    assert gone["seq"] > message["seq"]
    assert (gone["data"], gone["html"]) == (None, "")


def test_a_quiet_socket_stays_open_and_still_gets_changes(token):
    """Nothing to send for longer than the channel layer's 5 s wait on Redis (and redis-py's
    default socket timeout): the consumer must neither die nor miss the next change."""
    import asyncio

    node = Node.objects.create(name="edge-1", endpoint="tcp://127.0.0.1:2375")

    async def scenario():
        socket, connected, _ = await connect(ORIGIN, auth(token))
        assert connected
        await socket.receive_json_from(timeout=5)
        await asyncio.sleep(12)
        await in_thread(live.broadcast)("node", node.name)
        message = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return message

    message = run(scenario)
    assert (message["type"], message["id"]) == ("node", "edge-1")


def test_a_burst_is_coalesced_not_dropped(token):
    nodes = [
        Node.objects.create(name=f"edge-{n}", endpoint=f"tcp://127.0.0.1:{2400 + n}")
        for n in range(5)
    ]

    def burst():
        for _ in range(3):
            for node in nodes:
                live.broadcast("node", node.name)

    async def scenario():
        socket, _, _ = await connect(ORIGIN, auth(token))
        await socket.receive_json_from(timeout=5)
        await in_thread(burst)()
        got = []
        while not await socket.receive_nothing(timeout=1):
            got.append((await socket.receive_json_from(timeout=5))["id"])
        await socket.disconnect()
        return got

    got = run(scenario)
    assert set(got) == {n.name for n in nodes}, "every changed object arrives"
    # 15 changes to 5 objects: the first may leave alone, the rest are merged.
    assert len(got) <= 2 * len(nodes), got


def test_with_no_socket_open_changes_are_not_sent_and_a_later_socket_still_sees_them(token):
    node = Node.objects.create(name="edge-1", endpoint="tcp://127.0.0.1:2401")
    before = live.current_seq()
    node.availability = Node.Availability.DRAIN
    node.save(update_fields=["availability"])
    live.broadcast("node", node.name)
    assert live.wait_idle(10)
    assert live.current_seq() == before, "nothing was numbered or sent with no one listening"

    async def scenario():
        socket, _, _ = await connect(ORIGIN, auth(token))
        snapshot = await socket.receive_json_from(timeout=5)
        await in_thread(live.broadcast)("node", node.name)
        message = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return snapshot, message

    snapshot, message = run(scenario)
    shown = {n["name"]: n for n in snapshot["data"]["nodes"]}
    assert shown["edge-1"]["availability"] == "drain", "the snapshot shows the unsent change"
    assert (message["type"], message["id"]) == ("node", "edge-1")
    assert message["seq"] == before + 1


def test_a_node_change_also_refreshes_the_summary_on_its_page(token):
    node = Node.objects.create(name="edge-1", endpoint="tcp://127.0.0.1:2375")

    async def scenario():
        socket, _, _ = await connect(ORIGIN, auth(token))
        await socket.receive_json_from(timeout=5)
        await in_thread(Node.objects.filter(pk=node.pk).update)(engine_version="99.1")
        await in_thread(live.broadcast)("node", node.name)
        changed = await socket.receive_json_from(timeout=5)
        await in_thread(node.delete)()
        await in_thread(live.broadcast)("node", node.name)
        gone = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return changed, gone

    changed, gone = run(scenario)
    assert (changed["type"], changed["id"]) == ("node", "edge-1")
    assert changed["data"]["engine_version"] == "99.1"
    summary = changed["views"]["node-summary"]
    assert 'data-live="node-summary"' in summary and "99.1" in summary
    # Gone: every fragment of it is to be removed.
    assert (gone["data"], gone["views"]) == (None, {"node-summary": ""})


def test_a_client_that_saw_a_gap_gets_a_fresh_snapshot_on_request(token):
    async def scenario():
        socket, _, _ = await connect(ORIGIN, auth(token))
        first = await socket.receive_json_from(timeout=5)
        await in_thread(live.next_seq)()  # a message this client never saw
        await socket.send_json_to({"type": "resync"})
        again = await socket.receive_json_from(timeout=5)
        await socket.send_json_to({"type": "nonsense"})
        error = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return first, again, error

    first, again, error = run(scenario)
    assert again["type"] == "snapshot"
    assert again["seq"] == first["seq"] + 1
    assert error["type"] == "error"


def test_an_acknowledgement_without_a_replica_gets_an_error_and_one_for_no_log_nothing(token):
    async def scenario():
        socket, _, _ = await connect(ORIGIN, auth(token))
        await socket.receive_json_from(timeout=5)
        await socket.send_json_to({"type": "logs.ack", "replica": "all"})
        error = await socket.receive_json_from(timeout=5)
        await socket.send_json_to({"type": "logs.ack", "replica": 12345})  # followed by none
        quiet = await socket.receive_nothing(timeout=1)
        await socket.send_json_to({"type": "resync"})  # and the socket still answers
        again = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return error, quiet, again

    error, quiet, again = run(scenario)
    assert error["type"] == "error"
    assert error["data"]["detail"].startswith("acknowledge a log by its replica")
    assert quiet
    assert again["type"] == "snapshot"


def test_the_first_change_after_a_redis_restart_reaches_a_socket_opened_since(token, redis_server):
    """A restart of Redis breaks the sender's pooled connection to it: the next change must
    still go out (a socket opened after the restart gets no resync to make up for it)."""
    node = Node.objects.create(name="edge-1", endpoint="tcp://127.0.0.1:2375")

    async def seen_by_a_new_socket():
        socket, connected, _ = await connect(ORIGIN, auth(token))
        assert connected
        await socket.receive_json_from(timeout=5)  # the snapshot
        await in_thread(live.broadcast)("node", node.name)
        message = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return message

    assert run(seen_by_a_new_socket)["id"] == "edge-1"  # the sender's connection is made
    redis_server.stop()
    redis_server.start()
    message = run(seen_by_a_new_socket)
    assert (message["type"], message["id"]) == ("node", "edge-1")
