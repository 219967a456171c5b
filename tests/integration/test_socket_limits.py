"""How many sockets one user may hold open (FLEET_SOCKETS_PER_USER, 20 by default), live
pages and consoles together, counted in the real Redis as every web process counts them."""

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings

from dashboard import places
from fleet import redis_link
from fleet.access import sockets
from fleet.asgi import application
from fleet.console import sessions as console
from fleet.models import Event
from tests.conftest import token_for

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")  # what daphne hands on from the request


def socket_of(key, path="/ws/fleet/"):
    headers = [HOST, ORIGIN, (b"authorization", f"Token {key}".encode())]
    return WebsocketCommunicator(application, path, headers=headers)


async def live(key):
    """A live socket past its snapshot."""
    socket = socket_of(key)
    connected, _ = await socket.connect(timeout=10)
    assert connected
    assert (await socket.receive_json_from(timeout=10))["type"] == "snapshot"
    return socket


async def refused(socket):
    """What a socket over the limit gets: its first message and its close code."""
    await socket.connect(timeout=10)
    message = await socket.receive_json_from(timeout=10)
    closed = await socket.receive_output(timeout=10)
    await socket.disconnect()
    return message, closed["code"]


def test_one_socket_more_than_a_user_may_hold_is_told_why_and_closed_with_4429(
    viewer, operator, redis_server
):
    limit = settings.FLEET_SOCKETS_PER_USER
    key, other_key = token_for(viewer), token_for(operator)

    async def scenario():
        held = [await live(key) for _ in range(limit)]
        one_more = await refused(socket_of(key))
        others = await live(other_key)  # another user's count is their own
        await held.pop().disconnect()
        again = await live(key)  # a place freed is a place to take
        for socket in [*held, others, again]:
            await socket.disconnect()
        return one_more

    message, code = async_to_sync(scenario)()
    assert code == places.TOO_MANY == 4429
    assert message["type"] == "error"
    assert message["data"]["detail"].startswith(f"{limit} live pages or consoles of yours")
    assert sockets.open_count(viewer.pk) == 0, "every place is freed with its socket"


def test_a_console_past_the_sockets_limit_is_refused_with_4429_and_opens_nothing(
    operator, redis_server
):
    limit = settings.FLEET_SOCKETS_PER_USER
    key = token_for(operator)

    async def scenario():
        held = [await live(key) for _ in range(limit)]
        got = await refused(socket_of(key, "/ws/exec/?replica=1&cmd=sh"))
        for socket in held:
            await socket.disconnect()
        return got

    message, code = async_to_sync(scenario)()
    assert code == 4429
    assert message["type"] == "error"
    assert message["message"].startswith(f"{limit} live pages or consoles of yours")
    assert console.open_count(operator.pk) == 0
    assert not Event.objects.filter(kind="console.opened").exists()


def test_an_open_socket_renews_its_place_and_a_dead_processs_places_lapse(
    viewer, redis_server, monkeypatch
):
    """A socket renews its place while open; one no process renews (its web process died)
    lapses. The renewal comes every 20 s: 0.2 s here, so that the test sees two without
    waiting for them. The lapse is made by giving the places the score they would have a
    minute after their last renewal, rather than by waiting for it."""
    monkeypatch.setattr(sockets, "RENEW_SECONDS", 0.2)
    limit = settings.FLEET_SOCKETS_PER_USER
    key, client = sockets._key(viewer.pk), redis_link.client()
    token = token_for(viewer)

    async def scenario():
        socket = await live(token)
        (first,) = client.zrange(key, 0, -1, withscores=True)
        await asyncio.sleep(0.5)
        (later,) = client.zrange(key, 0, -1, withscores=True)
        await socket.disconnect()
        return first, later

    first, later = async_to_sync(scenario)()
    assert later[0] == first[0] and later[1] > first[1], "renewed: it lapses later"
    # A web process that died with every place of the user taken.
    tokens = [sockets.take_place(viewer.pk) for _ in range(limit)]
    with pytest.raises(sockets.SocketRefused):
        sockets.take_place(viewer.pk)
    client.zadd(key, {token: time.time() - 1 for token in tokens}, xx=True)
    sockets.release_place(viewer.pk, sockets.take_place(viewer.pk))
    assert sockets.open_count(viewer.pk) == 0
