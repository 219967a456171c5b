"""The console socket on the real lab: a terminal on a replica for operators, bounded per user,
audited, ended by its command, by idleness and by a lost role; bad messages answered."""

import asyncio
import json
import os
import signal
import socket as socket_module
import time
from contextlib import suppress
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient
from websockets.sync.client import connect

from dashboard import console as console_socket
from fleet import redis_link
from fleet.access import roles
from fleet.asgi import application
from fleet.console import sessions as console
from fleet.converge.runner import converge
from fleet.models import Event, Node, Replica, Service
from fleet.nodes import health
from tests.conftest import token_for
from tests.system import _start, _stop, clean_fleet, free_port, lab_engine, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")  # what daphne hands on from the request
in_thread = database_sync_to_async


def terminal(key, query):
    headers = [HOST, ORIGIN, (b"authorization", f"Token {key}".encode())]
    return WebsocketCommunicator(application, f"/ws/exec/?{query}", headers=headers)


async def opened(key, replica, cmd="/bin/sh"):
    """A console on the replica, past its "opened" message."""
    socket = terminal(key, f"replica={replica}&cmd={cmd}&cols=100&rows=30")
    connected, _ = await socket.connect(timeout=10)
    assert connected
    first = await socket.receive_json_from(timeout=10)
    assert first["type"] == "opened", first
    return socket


async def refusal(key, query):
    """The error message and close code a console that cannot be opened gets."""
    socket = terminal(key, query)
    await socket.connect(timeout=10)
    message = await socket.receive_json_from(timeout=10)
    closed = await socket.receive_output(timeout=10)
    await socket.disconnect()
    return message, closed["code"]


async def output_until(socket, text, timeout=10):
    """Everything the terminal showed until `text` appeared in it."""
    seen, deadline = "", time.monotonic() + timeout
    while text not in seen:
        try:
            message = await socket.receive_json_from(timeout=max(deadline - time.monotonic(), 0.01))
        except TimeoutError:
            raise AssertionError(f"{text!r} never shown; the terminal showed {seen!r}") from None
        assert message["type"] == "output", (message, seen)
        seen += message["data"]
    return seen


async def next_of(socket, kind, timeout=10):
    """The next message of this type, skipping the terminal's output."""
    while (message := await socket.receive_json_from(timeout=timeout))["type"] != kind:
        assert message["type"] == "output", message
    return message


async def end_of(socket, timeout=10):
    """The exit message and the close code that follows it."""
    exit_message = await next_of(socket, "exit", timeout)
    while (output := await socket.receive_output(timeout=timeout))["type"] != "websocket.close":
        pass
    return exit_message, output["code"]


def listening(port):
    with suppress(OSError), socket_module.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def revoke(key):
    """Revoke a token as its owner does, through the API, with the token itself."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    mine = [t for t in client.get("/api/auth/tokens/").json() if t["name"] == "other"]
    assert client.delete(f"/api/auth/tokens/{mine[0]['id']}/").status_code == 204


def set_node_status(replica_pk, status):
    # Nothing runs here to check nodes (no beat, no watch), so the status stays as set.
    Node.objects.filter(replica_set__pk=replica_pk).update(status=status)


def events(kind):
    return list(Event.objects.filter(kind=kind).order_by("id"))


@pytest.fixture
def shell(lab, lab_nodes, api):
    """A running replica of the demo image (busybox: sh, stty); its id.

    Consoles need no worker or clock, so the service is converged here, by the same
    function a worker runs, on nodes checked once: it saves starting (and stopping) a
    worker and beat for each test.
    """
    for node in lab_nodes:
        health.check_node(node.pk)
    with clean_fleet(lab, api) as fleet:
        # No monitoring period: the first deployment has nothing to roll back to anyway.
        service = fleet.create("shell", replicas=1, update={"monitor": 0})
        converge(Service.objects.get(name=service["name"]).pk)
        fleet.converged("shell", 1, timeout=20)
        yield Replica.objects.get(service__name="shell").pk


def test_an_operator_runs_commands_in_a_replica_and_bad_messages_change_nothing(shell, operator):
    key = token_for(operator)
    oversized = "x" * (console_socket.MAX_MESSAGE + 1)
    bad = [
        ("not json", "not JSON"),
        ('{"type": "shell"}', "unknown message type 'shell'"),
        ("[1, 2]", "unknown message type None"),
        ('{"type": "input", "data": 42}', "input data must be text"),
        ('{"type": "resize", "cols": 0, "rows": 24}', "resize needs whole numbers"),
        ('{"type": "resize", "cols": 80, "rows": "24"}', "resize needs whole numbers"),
        ('{"type": "resize", "cols": 80, "rows": true}', "resize needs whole numbers"),
        ('{"type": "resize", "cols": 99999, "rows": 24}', "resize needs whole numbers"),
        ('{"type": "input", "data": "' + oversized + '"}', "message too large"),
    ]

    async def scenario():
        socket = await opened(key, shell)
        answers = []
        for text, _ in bad:
            await socket.send_to(text_data=text)
            answers.append(await next_of(socket, "error"))
        await socket.send_to(bytes_data=b"echo binary\n")
        answers.append(await next_of(socket, "error"))
        await socket.send_json_to({"type": "input", "data": "echo fleet-$((6*7))\n"})
        echoed = await output_until(socket, "fleet-42\r\n")
        await socket.send_json_to({"type": "resize", "cols": 123, "rows": 45})
        await socket.send_json_to({"type": "input", "data": "stty size\n"})
        size = await output_until(socket, "45 123")
        await socket.send_json_to({"type": "input", "data": "exit 3\n"})
        ended = await end_of(socket)
        await socket.disconnect()
        return answers, echoed, size, ended

    answers, echoed, size, (exit_message, close_code) = async_to_sync(scenario)()
    for (text, expected), answer in zip(bad, answers, strict=False):
        assert answer["type"] == "error" and expected in answer["message"], (text[:40], answer)
    assert "not binary" in answers[-1]["message"]
    assert "fleet-42" in echoed and "45 123" in size  # the bad messages changed nothing
    assert exit_message == {"type": "exit", "code": 3, "reason": "the command ended"}
    assert close_code == 1000
    (started,) = events("console.opened")
    (ended,) = events("console.closed")
    assert (started.actor, started.via, started.service_name) == ("operator", "token", "shell")
    assert f"replica {shell} " in started.reason and started.reason.endswith(": /bin/sh")
    assert ended.actor == "operator" and ended.new == "3"
    assert "closed after" in ended.reason and ended.reason.endswith(
        "the command ended, exit code 3"
    )
    assert console.open_count(operator.pk) == 0


def test_input_a_command_does_not_read_waits_within_a_bound_and_the_rest_is_refused(
    shell, operator
):
    """A terminal in raw mode whose command reads nothing: the engine's buffers fill, then
    input waits in the web process, at most MAX_PENDING bytes of it; more is refused with
    an error (nothing else changes: the console stays open)."""
    key = token_for(operator)
    chunk = "y" * 60_000
    command = quote("sh -c 'stty raw -echo; exec sleep 600'")

    async def scenario():
        socket = await opened(key, shell, cmd=command)
        refused = None
        for _ in range(400):  # 24 MB at most: far past what the engine and sockets buffer
            await socket.send_json_to({"type": "input", "data": chunk})
            if not await socket.receive_nothing(timeout=0.01):
                refused = await next_of(socket, "error")
                break
        await socket.send_json_to({"type": "resize", "cols": 90, "rows": 20})
        still_open = await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()
        return refused, still_open

    refused, still_open = async_to_sync(scenario)()
    assert refused is not None, "every input was taken"
    assert "input not sent: the command has not read the last" in refused["message"]
    assert still_open
    (ended,) = events("console.closed")
    assert ended.reason.endswith("closed by the browser, exit code 129")  # hung up


def test_a_console_left_open_by_a_killed_web_process_is_ended_when_it_starts_again(
    shell, operator, process_env, lab
):
    key = token_for(operator)
    port = free_port()
    daphne = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "fleet.asgi:application"]
    replica = Replica.objects.select_related("node").get(pk=shell)
    (entry,) = [n for n in lab.status()["nodes"] if n["name"] == replica.node.name]
    container = lab_engine(entry).containers.get(replica.container_id)

    def sleeping():
        return [
            p for p in container.top(ps_args="-o pid,args")["Processes"] if "sleep 600" in p[-1]
        ]

    web = _start("web", daphne, process_env)
    try:
        url = f"ws://127.0.0.1:{port}/ws/exec/?replica={shell}&cmd=" + quote("sleep 600")
        headers = {"Authorization": f"Token {key}", "Origin": f"http://127.0.0.1:{port}"}
        wait_for(lambda: listening(port), 30, message="daphne to listen")
        with connect(url, additional_headers=headers, open_timeout=10) as socket:
            assert json.loads(socket.recv(10))["type"] == "opened"
            wait_for(sleeping, 10, message="the console's command to run")
            os.killpg(web.pid, signal.SIGKILL)
            web.wait()
        time.sleep(1)
        assert sleeping() and not events("console.closed")  # nothing ended it yet
        web = _start("web", daphne, process_env)
        wait_for(lambda: events("console.closed"), 30, message="the console's close")
    finally:
        _stop([web])
    (ended,) = events("console.closed")
    assert ended.actor == "operator" and ended.via == "token"
    assert "the web process serving it ended" in ended.reason
    assert not sleeping()
    assert console.open_count(operator.pk) == 0


def test_who_may_open_a_console_on_what_and_how_many_at_once(shell, operator, viewer):
    key, viewer_key = token_for(operator), token_for(viewer)
    limit = console.settings.FLEET_CONSOLE_MAX_SESSIONS
    running = Replica.objects.get(pk=shell)
    pending = Replica.objects.create(  # a replica whose container is not (yet) made
        service_id=running.service_id, deployment_id=running.deployment_id, slot=9
    ).pk
    too_long = "the command must be text of at most 512 characters, without NUL"
    # (who, query, the error's start); each refused with 4400 but the viewer's (4403).
    bad = [
        (viewer_key, f"replica={shell}", "only operators and admins may open a console"),
        (key, "replica=999999", "no replica 999999"),
        (key, "replica=abc", "name the replica by its id"),
        (key, "replica=-1", "name the replica by its id"),
        (key, f"replica={shell}.0", "name the replica by its id"),
        (key, f"replica={pending}", f"replica {pending} is not running (pending)"),
        (key, f"replica={shell}&cmd=%22unclosed", "cannot read the command"),
        (key, f"replica={shell}&cmd=" + "x" * 513, too_long),
        (key, f"replica={shell}&cmd=sh%00-c", too_long),
        (key, "&".join(f"p{i}=1" for i in range(20)), "too many parameters"),
    ]

    async def scenario():
        refused = [await refusal(who, query) for who, query, _ in bad]
        # A node that does not answer: refused at once, not after the engine's timeout.
        await in_thread(set_node_status)(shell, "unreachable")
        unreachable = await refusal(key, f"replica={shell}")
        await in_thread(set_node_status)(shell, "ready")
        sockets = [await opened(key, shell) for _ in range(limit)]
        one_too_many = await refusal(key, f"replica={shell}")
        # Closed by the browser: its place is free again, and the shell ended with it.
        await sockets.pop().disconnect()
        sockets.append(await opened(key, shell))
        for socket in sockets:
            await socket.disconnect()
        return refused, unreachable, one_too_many

    refused, unreachable, one_too_many = async_to_sync(scenario)()
    for (who, query, expected), (message, code) in zip(bad, refused, strict=True):
        assert message["type"] == "error" and message["message"].startswith(expected), query
        assert code == (4403 if who == viewer_key else 4400), query
    node = running.node.name
    assert unreachable == (
        {"type": "error", "message": f"replica {shell}'s node {node} is unreachable"},
        4400,
    )
    assert one_too_many[0]["message"].startswith(f"you already have {limit} consoles open")
    assert one_too_many[1] == 4400
    assert len(events("console.opened")) == limit + 1  # none for the refusals
    closed = events("console.closed")
    assert len(closed) == limit + 1
    assert all(e.reason.endswith("closed by the browser, exit code 129") for e in closed)
    assert console.open_count(operator.pk) == 0


def test_renewed_places_keep_the_count_past_its_first_minute(redis_server, operator):
    """Open consoles renew their places every RENEW_SECONDS; the count must hold as long
    as they do. The minute since the first one opened is made by shortening the set's
    expiry to what it would be then (1 s left), rather than waited for."""
    limit = console.settings.FLEET_CONSOLE_MAX_SESSIONS
    tokens = [console._take_place(operator.pk) for _ in range(limit)]
    redis_link.client().expire(console._key(operator.pk), 1)
    for token in tokens:
        console.Session(operator.pk, token, None, [], None, None, None).renew()
    time.sleep(1.5)
    assert console.open_count(operator.pk) == limit
    with pytest.raises(console.ConsoleRefused, match=f"you already have {limit} consoles open"):
        console._take_place(operator.pk)
    for token in tokens:
        console._release_place(operator.pk, token)


def test_a_console_ends_when_idle_and_when_its_user_loses_the_role(shell, operator, settings):
    # Idle consoles close after FLEET_CONSOLE_IDLE_TIMEOUT (10 minutes by default); two
    # seconds here, so that the test sees one close without waiting for ten minutes.
    settings.FLEET_CONSOLE_IDLE_TIMEOUT = 2
    key, other_key = token_for(operator), token_for(operator, "other")

    async def scenario():
        idle, busy = await opened(key, shell), await opened(key, shell)
        other = await opened(other_key, shell)
        started = time.monotonic()
        while time.monotonic() - started < 3.5:  # the busy ones type; they stay open
            for socket in (busy, other):
                await socket.send_json_to({"type": "input", "data": ":\n"})
            await asyncio.sleep(0.5)
        idle_end = await end_of(idle, timeout=1)
        # Signed out: the other token revoked ends its console, not this token's.
        await in_thread(revoke)(other_key)
        signed_out = await end_of(other, timeout=5)
        await busy.send_json_to({"type": "input", "data": "echo still-$((1+1))\n"})
        await output_until(busy, "still-2\r\n")
        await in_thread(roles.assign)(operator, roles.VIEWER)
        role_end = await end_of(busy, timeout=5)
        for socket in (idle, other, busy):
            await socket.disconnect()
        return idle_end, signed_out, role_end

    (idle_exit, idle_code), (out_exit, out_code), (role_exit, role_code) = async_to_sync(scenario)()
    assert idle_code == 4408 and idle_exit["reason"] == "no input for 2 s"
    assert out_code == 4401 and out_exit["reason"] == "signed out"
    assert role_code == 4403 and role_exit["reason"] == "no longer allowed to open consoles"
    # Each shell was hung up: the exit code of a shell ended by SIGHUP.
    assert idle_exit["code"] == out_exit["code"] == role_exit["code"] == 129
    reasons = [e.reason for e in events("console.closed")]
    assert len(reasons) == 3
    assert "no input for 2 s" in reasons[0] and "signed out" in reasons[1]
    assert "no longer allowed" in reasons[2]
    assert console.open_count(operator.pk) == 0


def test_only_those_who_may_open_a_console_get_its_panel_and_script(viewer, operator, settings):
    from django.test import Client

    from fleet import services
    from fleet.services.spec import ServiceSpecSerializer

    spec = ServiceSpecSerializer(data={"name": "web", "image": settings.FLEET_DEFAULT_IMAGE})
    spec.is_valid(raise_exception=True)
    services.create(spec.validated_data)
    pages = {}
    for user in (viewer, operator):
        client = Client()
        client.force_login(user)
        pages[user.username] = client.get("/services/web/").content.decode()
    assert 'id="console"' not in pages["viewer"] and "js/console.js" not in pages["viewer"]
    assert 'id="console"' in pages["operator"] and "js/console.js" in pages["operator"]
    assert 'data-socket="/ws/exec/"' in pages["operator"]
