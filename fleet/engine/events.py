"""A node's stream of container events, each checked before Fleet acts on it.

An engine is a peer, not a part of Fleet: a broken or hostile one may send a line that is
not JSON, a time that is not a number or a container id that is not one. Such an event
comes out of the stream as a GarbledEvent (what was wrong, and the line) instead of
ending it: a stream that ended would be reopened from the last good event, and the
engine would send the same line again, for ever.
"""

import hashlib
import json
import re
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import requests
from docker.types import CancellableStream

from fleet.engine.client import SDK_ERRORS, client, failure
from fleet.engine.errors import EngineUnreachable
from fleet.engine.node import EngineNode

# A container id as every engine makes it; only these reach the database and the ingress.
CONTAINER_ID = re.compile(r"[0-9a-f]{64}")
LONGEST_EVENT = 64 * 1024  # bytes: a real event is well under 2 KiB
_INT64 = 2**63

# An events stream is quiet while nothing happens, so a read timeout cannot tell a quiet
# engine from a vanished one; TCP keepalive can: a silent peer ends the stream within
# about KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_PROBES seconds.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES = 5, 2, 3

# The container events Fleet acts on (a replica's state, health and memory kill; a node's
# counts), asked of the engine by name so that it never sends the rest. A health check is
# an exec: three events (exec_create, exec_start, exec_die) per check, nine replicas checked
# every half second sent 54 a second per engine, each decoded and looked up for nothing.
# "health_status" in the filter makes every engine since 1.13 match names by prefix
# (moby#25798), which is what "health_status: healthy" needs; no other name here is the
# start of an event Fleet ignores.
ACTIONS = ("create", "start", "die", "destroy", "oom", "pause", "unpause", "health_status")


@dataclass(frozen=True)
class GarbledEvent:
    """A line of the stream that is not a well-formed container event."""

    reason: str
    line: bytes

    @property
    def key(self) -> str:
        """The same line sent again has the same key (to tell a replay from news)."""
        return hashlib.sha256(self.line).hexdigest()

    def __str__(self) -> str:
        shown = self.line[:200].decode("utf-8", "replace")
        return f"{self.reason}: {shown!r}" + (" ..." if len(self.line) > 200 else "")


def problem_of(event: Any) -> str:
    """What makes a decoded event unfit to act on, or "" when it is a fit container event."""
    if not isinstance(event, dict):
        return "not a JSON object"
    if event.get("Type", "container") != "container":
        return "not a container event"
    actor = event.get("Actor", {})
    if not isinstance(actor, dict):
        return "Actor is not an object"
    attributes = actor.get("Attributes", {})
    if not isinstance(attributes, dict) or not all(
        isinstance(value, str) for value in attributes.values()
    ):
        return "Actor.Attributes is not a map of strings"
    container_id = actor.get("ID") or event.get("id")
    if not isinstance(container_id, str) or not CONTAINER_ID.fullmatch(container_id):
        return "the container id is not 64 hexadecimal digits"
    for key in ("time", "timeNano"):
        value = event.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _INT64:
            return f"{key} is not a time"
    for key in ("Action", "status"):
        if not isinstance(event.get(key, ""), str):
            return f"{key} is not a string"
    return ""


def _lines(chunks: Iterable[bytes | str]) -> Iterator[bytes | GarbledEvent]:
    """The stream's lines; one longer than LONGEST_EVENT is cut off and garbled."""
    buffer, overlong = b"", False
    for chunk in chunks:
        buffer += chunk.encode() if isinstance(chunk, str) else chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if overlong:
                overlong = False  # the rest of the line already reported
            elif line.strip():
                yield line
        if len(buffer) > LONGEST_EVENT and not overlong:
            yield GarbledEvent(f"a line longer than {LONGEST_EVENT} bytes", buffer)
            overlong = True
        if overlong:
            buffer = b""
    if buffer.strip() and not overlong:
        yield buffer


def decoded(chunks: Iterable[bytes | str]) -> Iterator[dict[str, Any] | GarbledEvent]:
    """Each line of an events stream decoded and checked."""
    for line in _lines(chunks):
        if isinstance(line, GarbledEvent):
            yield line
            continue
        try:
            event = json.loads(line)
        except ValueError:  # UnicodeDecodeError included
            yield GarbledEvent("not JSON", line)
            continue
        problem = problem_of(event)
        yield GarbledEvent(problem, line) if problem else event


def _stream_socket(response: requests.Response) -> socket.socket | None:
    """The socket under a streamed response (as docker's CancellableStream finds it)."""
    raw = getattr(getattr(response.raw, "_fp", None), "fp", None)
    raw = getattr(raw, "raw", None)
    return getattr(raw, "_sock", None) or getattr(raw, "sock", None)


def _wait_quietly(response: requests.Response) -> None:
    """Let the stream wait for events as long as it likes, with keepalive on TCP."""
    sock = _stream_socket(response)
    if sock is None:
        return
    sock.settimeout(None)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_PROBES)


def events(
    node: EngineNode, since: str | None = None, timeout: float = 5
) -> "CancellableStream[dict[str, Any] | GarbledEvent]":  # generic in its stubs only
    """Open the node's stream of container events, decoded and checked, from `since` on.

    Connecting and the answer's headers get `timeout` (the SDK's own events() waits
    forever, even to connect); then the stream blocks while the engine is quiet. It
    ends when the engine goes away (TCP keepalive notices a silent one), and close()
    ends it from another thread.
    """
    api: Any = client(node, timeout).api  # Any: the SDK's private helpers (see ping)
    params = {"filters": json.dumps({"type": ["container"], "event": list(ACTIONS)})}
    if since:
        params["since"] = since
    try:
        response = api._get(api._url("/events"), params=params, stream=True, timeout=timeout)
        api._raise_for_status(response)
        _wait_quietly(response)
    except SDK_ERRORS as exc:
        raise failure(exc, timeout) from exc
    except OSError as exc:
        raise EngineUnreachable(f"events stream: {exc}") from exc
    return CancellableStream(decoded(api._stream_helper(response, decode=False)), response)
