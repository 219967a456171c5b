"""An open socket ends with its login: logging out, a revoked token or a lost role closes it
(log tails included) within seconds, even on a quiet fleet; and one socket's demands on the
server are bounded (logs followed at once, resyncs), with an error, not a disconnect."""

import asyncio
import threading
import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from rest_framework.test import APIClient

from dashboard import consumers
from fleet.access import roles
from fleet.asgi import application
from tests.conftest import api_for, token_for
from tests.system import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")  # what daphne hands on from the request
# A replica that writes a log line five times a second, so that a tail always has news.
TICKING = {"command": ["sh", "-c", "while true; do echo tick; sleep 0.2; done"]}


def revoke(key):
    """Revoke a token as its owner does, through the API, with the token itself."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    (mine,) = client.get("/api/auth/tokens/").json()
    assert client.delete(f"/api/auth/tokens/{mine['id']}/").status_code == 204


def by_token(key):
    headers = [HOST, ORIGIN, (b"authorization", f"Token {key}".encode())]
    return WebsocketCommunicator(application, "/ws/fleet/", headers=headers)


def by_session(client, path="/ws/fleet/", origin=ORIGIN):
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return WebsocketCommunicator(application, path, headers=[HOST, origin, (b"cookie", cookie)])


def connects(socket):
    """Whether the socket is let in (a refused one is let go at once)."""

    async def scenario():
        connected, _ = await socket.connect(timeout=5)
        await socket.disconnect()
        return connected

    return async_to_sync(scenario)()


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:8080",  # Fleet's ingress port: any operator's service serves there
        "http://127.0.0.1:9999",
        "https://127.0.0.1:8000",
        "http://localhost:8000",
        "null",
    ],
)
@pytest.mark.parametrize("path", ["/ws/fleet/", "/ws/exec/?replica=1&cmd=sh"])
def test_a_page_of_another_origin_gets_no_socket_with_an_admins_session(
    client, admin_user, redis_server, origin, path
):
    """A browser sends the admin's cookie with a socket any page opens: only the origin
    the socket was asked on (scheme, host and port) may have one."""
    client.force_login(admin_user)
    assert not connects(by_session(client, path, (b"origin", origin.encode())))
    assert connects(by_session(client))  # the page's own origin, the same cookie


def test_a_socket_without_an_origin_is_refused(client, admin_user, redis_server):
    client.force_login(admin_user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    socket = WebsocketCommunicator(application, "/ws/fleet/", headers=[HOST, (b"cookie", cookie)])
    assert not connects(socket)


async def closed_within(socket, seconds):
    """The close code the socket gets within `seconds`; whatever came before is skipped."""
    deadline = time.monotonic() + seconds
    while True:
        output = await socket.receive_output(timeout=max(deadline - time.monotonic(), 0.01))
        if output["type"] == "websocket.close":
            return output["code"], time.monotonic() - (deadline - seconds)


async def next_of(socket, kinds, timeout=5):
    """The next message of one of these types, skipping live changes."""
    while (message := await socket.receive_json_from(timeout=timeout))["type"] not in kinds:
        pass
    return message


def ends_with(socket, action, code):
    """Connect, take the snapshot, act (in a thread: it is plain Django), and return the close
    code and how long after the action it came."""

    async def scenario():
        connected, _ = await socket.connect(timeout=5)
        assert connected
        await socket.receive_json_from(timeout=5)
        await database_sync_to_async(action)()
        got = await closed_within(socket, 5)
        await socket.disconnect()
        return got

    got, after = async_to_sync(scenario)()
    assert got == code
    assert after < 5
    return after


def test_logging_out_closes_the_browsers_socket(viewer, redis_server):
    client = Client()
    client.force_login(viewer)
    ends_with(by_session(client), lambda: client.post("/logout/"), 4401)


def test_a_password_set_in_the_admin_closes_the_users_browser_socket(
    viewer, fleet_admin, redis_server
):
    client, admin = Client(), Client()
    client.force_login(viewer)
    admin.force_login(fleet_admin)
    new = {"password1": "a-new-pass-4567", "password2": "a-new-pass-4567"}

    def set_password():
        response = admin.post(f"/admin/auth/user/{viewer.pk}/password/", new)
        assert response.status_code == 302, response.content[:500]

    ends_with(by_session(client), set_password, 4401)


def test_revoking_the_token_closes_the_sockets_opened_with_it(viewer, redis_server):
    key = token_for(viewer)
    ends_with(by_token(key), lambda: revoke(key), 4401)


def test_losing_the_role_closes_a_socket_on_a_quiet_fleet(viewer, redis_server, monkeypatch):
    # No change is pushed to the socket (the role change's own event is not broadcast here),
    # so only the socket's own check can notice.
    monkeypatch.setattr("fleet.live.broadcast", lambda *args, **kwargs: None)
    ends_with(by_token(token_for(viewer)), lambda: roles.assign(viewer, None), 4403)


def test_a_second_resync_within_a_second_gets_an_error_and_the_socket_stays(viewer, redis_server):
    socket = by_token(token_for(viewer))

    async def scenario():
        await socket.connect(timeout=5)
        await socket.receive_json_from(timeout=5)
        await socket.send_json_to({"type": "resync"})
        first = await next_of(socket, ("snapshot", "error"))
        await socket.send_json_to({"type": "resync"})
        second = await next_of(socket, ("snapshot", "error"))
        await database_sync_to_async(time.sleep)(consumers.RESYNC_SECONDS)
        await socket.send_json_to({"type": "resync"})
        third = await next_of(socket, ("snapshot", "error"))
        await socket.disconnect()
        return first, second, third

    first, second, third = async_to_sync(scenario)()
    assert first["type"] == "snapshot" and third["type"] == "snapshot"
    assert second["type"] == "error"
    assert second["data"]["detail"].startswith("resync refused: at most one every 1 s")


def log_threads():
    return [t for t in threading.enumerate() if t.name.startswith("logs-")]


@pytest.fixture
def ticking(fleet):
    """Five replicas that log all the time; their replica ids."""
    from fleet.models import Replica

    fleet.create("tick", replicas=consumers.MAX_LOGS + 1, **TICKING)
    fleet.converged("tick", consumers.MAX_LOGS + 1)
    return list(Replica.objects.filter(service__name="tick").values_list("pk", flat=True))


@pytest.mark.lab
def test_a_socket_follows_a_bounded_number_of_logs_and_is_told_when_it_asks_for_more(
    ticking, admin_user
):
    socket = by_token(token_for(admin_user))
    *allowed, extra = ticking

    async def scenario():
        await socket.connect(timeout=5)
        await socket.receive_json_from(timeout=5)
        for pk in allowed:
            await socket.send_json_to({"type": "logs.follow", "replica": pk})
        await socket.send_json_to({"type": "logs.follow", "replica": extra})
        refused = await next_of(socket, ("error",))
        seen = set()
        while seen != set(allowed):  # every log followed sends its lines
            seen.add((await next_of(socket, ("log",)))["id"])
        await socket.send_json_to({"type": "logs.stop", "replica": allowed[0]})
        await socket.send_json_to({"type": "logs.follow", "replica": extra})
        while (now := await next_of(socket, ("log", "error")))["id"] != extra:
            pass
        await socket.disconnect()
        return refused, now

    refused, now = async_to_sync(scenario)()
    assert now["type"] == "log"  # once one stopped, the fifth is followed
    assert refused["id"] == extra
    assert f"already following {consumers.MAX_LOGS} logs" in refused["data"]["detail"]
    wait_for(lambda: not log_threads(), 5, message="every log tail to end with the socket")


@pytest.mark.lab
def test_losing_the_role_ends_a_log_tail_too(ticking, viewer, monkeypatch):
    monkeypatch.setattr("fleet.live.broadcast", lambda *args, **kwargs: None)
    socket = by_token(token_for(viewer))

    async def scenario():
        await socket.connect(timeout=5)
        await socket.receive_json_from(timeout=5)
        await socket.send_json_to({"type": "logs.follow", "replica": ticking[0]})
        await next_of(socket, ("log",))
        await database_sync_to_async(roles.assign)(viewer, None)
        code, after = await closed_within(socket, 5)
        # The tail ends with the socket, not only once the client goes.
        for _ in range(30):
            if not log_threads():
                break
            await asyncio.sleep(0.1)
        tails = log_threads()
        await socket.disconnect()
        return code, after, tails

    code, after, tails = async_to_sync(scenario)()
    assert code == 4403 and after < 5
    assert tails == []


def test_revoking_one_users_token_leaves_other_users_sockets_open(viewer, operator, redis_server):
    mine, theirs = token_for(viewer), token_for(operator)
    other = by_token(theirs)

    async def scenario():
        await other.connect(timeout=5)
        await other.receive_json_from(timeout=5)
        await database_sync_to_async(revoke)(mine)
        await database_sync_to_async(time.sleep)(1)  # the revocation's push has come and gone
        await other.send_json_to({"type": "resync"})
        reply = await next_of(other, ("snapshot", "error"))
        await other.disconnect()
        return reply

    assert async_to_sync(scenario)()["type"] == "snapshot"
    assert api_for(operator).get("/api/nodes/").status_code == 200
