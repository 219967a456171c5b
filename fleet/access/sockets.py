"""Each user's open sockets (the live socket and consoles alike), at most
FLEET_SOCKETS_PER_USER at once, counted in Redis so that every web process sees the same
count. A socket's place lapses unless renewed, so that a web process that dies with
sockets open does not hold its users' places for ever (as consoles' places do:
fleet.console.sessions).
"""

import redis
from django.conf import settings

from fleet import redis_link, slots

LAPSE_SECONDS = 60
RENEW_SECONDS = 20


class SocketRefused(Exception):
    """Why a socket may not open; the message is fit to show the user."""


def _key(user_pk: int) -> str:
    return f"fleet:sockets:{user_pk}"


def take_place(user_pk: int) -> str:
    """A place for one more socket of the user: its token, or SocketRefused."""
    limit = settings.FLEET_SOCKETS_PER_USER
    try:
        token = slots.take(redis_link.client(), _key(user_pk), limit, LAPSE_SECONDS)
    except redis.RedisError as exc:
        # Without the count there is no bound: refuse rather than open unbounded.
        raise SocketRefused(f"cannot count your open sockets: {exc}") from exc
    if token is None:
        raise SocketRefused(
            f"{limit} live pages or consoles of yours are open already, the most one user "
            "may; close one (another tab), then reload"
        )
    return token


def renew_place(user_pk: int, token: str) -> None:
    """Keep a socket's place (due every RENEW_SECONDS while it is open)."""
    slots.renew(redis_link.client(), _key(user_pk), token, LAPSE_SECONDS)


def release_place(user_pk: int, token: str) -> None:
    slots.release(redis_link.client(), _key(user_pk), token)


def open_count(user_pk: int) -> int:
    """How many sockets the user holds open now (every web process counted)."""
    return slots.held(redis_link.client(), _key(user_pk))
