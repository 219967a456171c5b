"""Consoles whose web process ended: found when a web process starts, and ended then.

Every open console is written down in Redis (what is needed to end it without its
socket: the container, the exec, the mark its processes carry, its user's place, who
opened it and when) with the web process that serves it, and renewed with its place.
A console is an orphan once that process is gone from this host, or once it has not
been renewed for LAPSE_SECONDS (a process on another host that died). Ending one hangs up
its command, frees its user's place and records console.closed, as a closed socket does.
"""

import json
import logging
import os
import socket
import threading
import time
from contextlib import suppress
from functools import cache

import redis

from fleet import redis_link, slots
from fleet.engine import terminal as engine_exec
from fleet.engine.errors import EngineError
from fleet.models import Actor, Event, EventKind, Node

log = logging.getLogger(__name__)

RECORDS, RENEWED = "fleet:console:open", "fleet:console:renewed"
LAPSE_SECONDS = 60  # as a place in the count (fleet.console.sessions)
WHY = "the web process serving it ended"


def _process_started(pid):
    """When the process started, in clock ticks since boot; None if there is none."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


@cache
def this_process():
    """This web process, told apart from a later one that reuses its pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{_process_started(os.getpid())}"


def _gone(owner):
    """Whether the process that served a console is known to have ended."""
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host's: only its lapse tells
    return _process_started(int(pid)) != started


def register(session, opened_at):
    """Write an open console down (its opened Event's id names it)."""
    replica = session.replica
    record = {
        "owner": this_process(),
        "user": session.user_pk,
        "place": session.token,
        "node": replica.node_id,
        "container": replica.container_id,
        "container_name": replica.container_name,
        "service": replica.service.name,
        "replica": replica.pk,
        "exec": session.exec.exec_id,
        "mark": session.exec.mark,
        "actor": [session.actor.name, session.actor.via, session.actor.address],
        "opened_at": opened_at,
    }
    with suppress(redis.RedisError):
        redis_link.client().pipeline().hset(
            RECORDS, str(session.opened_event), json.dumps(record)
        ).zadd(RENEWED, {str(session.opened_event): time.time()}).execute()


def renew(session):
    with suppress(redis.RedisError):
        redis_link.client().zadd(RENEWED, {str(session.opened_event): time.time()}, xx=True)


def forget(session):
    """The console ended where it was served: nothing is left to do."""
    with suppress(redis.RedisError):
        redis_link.client().pipeline().hdel(RECORDS, str(session.opened_event)).zrem(
            RENEWED, str(session.opened_event)
        ).execute()


def end_orphans(now=None):
    """End every console whose web process is gone or whose record lapsed; return how many."""
    now = now or time.time()
    client = redis_link.client()
    records = client.hgetall(RECORDS)
    renewed = dict(client.zrange(RENEWED, 0, -1, withscores=True))
    ended = 0
    for name, text in records.items():
        record = json.loads(text)
        lapsed = renewed.get(name, 0) + LAPSE_SECONDS < now
        if not (lapsed or _gone(record["owner"])):
            continue
        # Claimed by deleting it: of two processes starting at once, one ends it.
        if client.hdel(RECORDS, name):
            client.zrem(RENEWED, name)
            _end(int(name), record, now)
            ended += 1
    return ended


def _end(opened_event, record, now):
    slots.release(redis_link.client(), f"fleet:console:{record['user']}", record["place"])
    node = Node.objects.filter(pk=record["node"]).first()
    code = None
    if node is not None:
        try:
            code = engine_exec.exit_code(node, record["exec"], 0)
            for signal_name, wait in (("HUP", 2.0), ("KILL", 1.0)):
                if code is not None:
                    break
                engine_exec.hang_up(node, record["container"], record["mark"], signal_name)
                code = engine_exec.exit_code(node, record["exec"], wait)
        except EngineError as exc:
            log.warning("console %s: cannot end its command: %s", opened_event, exc)
    seconds = now - record["opened_at"]
    ended = WHY if code is None else f"{WHY}, exit code {code}"
    Event.objects.record(
        EventKind.CONSOLE_CLOSED,
        actor=Actor(*record["actor"]),
        service=record["service"],
        node=node or "",
        old=record["container_name"][:255],
        new="" if code is None else str(code),
        reason=f"console on replica {record['replica']} closed after {seconds:.1f} s: {ended}",
    )


def end_orphans_soon():
    """In a thread of its own, so that the web process serves at once: a node that does
    not answer would hold a start-up up to the exec calls' timeouts."""

    def run():
        from django.db import connections

        try:
            ended = end_orphans()
            if ended:
                log.info("ended %d console(s) left open by a web process that ended", ended)
        except redis.RedisError as exc:
            log.warning("cannot look for consoles left open: %s", exc)
        except Exception:
            log.exception("could not end the consoles left open")
        finally:
            connections.close_all()

    threading.Thread(target=run, name="console-orphans", daemon=True).start()
