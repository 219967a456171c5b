"""Containers on an engine: listed, their images ensured (pulled within a node's slots),
run, removed, and their logs followed. Part of the Docker seam, through client.py's clients.
"""

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import docker
import requests
from django.conf import settings
from docker.errors import ImageNotFound, NotFound
from docker.types import CancellableStream
from docker.utils import parse_repository_tag

from fleet.engine import trust
from fleet.engine.client import (
    CALL_TIMEOUT,
    LIST_TIMEOUT,
    SDK_ERRORS,
    causes,
    client,
    failure,
    ping,
)
from fleet.engine.errors import (
    PULL_TIMED_OUT,
    PULL_UNTRUSTED,
    EngineError,
    PullError,
    pull_failure,
    registry_of,
)
from fleet.engine.events import CONTAINER_ID
from fleet.engine.node import EngineNode
from fleet.engine.pulls import pull_slot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one replica's container."""

    name: str
    image: str
    labels: dict[str, str]
    command: list[str] = field(default_factory=list)
    # holds opened secrets: never shown
    env: dict[str, str] = field(default_factory=dict, repr=False)
    # [{"container", "published", "protocol"}]
    ports: list[dict[str, Any]] = field(default_factory=list)
    healthcheck: dict[str, Any] | None = None  # Docker's form, durations in nanoseconds
    cpus: float | None = None
    memory_bytes: int | None = None
    # The registry login a pull of the image sends, if it needs one: never shown.
    auth: dict[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ObservedContainer:
    """One container as a listing shows it."""

    id: str
    name: str
    labels: dict[str, str]
    state: str  # Docker's: created, running, exited, dead, restarting, paused, removing
    health: str  # none, starting, healthy, unhealthy
    exit_code: int | None
    host_ports: dict[str, int]  # {"80/tcp": 49153}
    created: int


PROTOCOLS = ("tcp", "udp", "sctp")
_HEALTH = re.compile(r"\((?:health: )?(starting|healthy|unhealthy)\)")
_EXIT = re.compile(r"Exited \((-?\d+)\)")


def _port(value: Any) -> int | None:
    return value if isinstance(value, int) and 0 < value < 65536 else None


def _observed(row: dict[str, Any]) -> ObservedContainer:
    status = row.get("Status") or ""
    health = _HEALTH.search(status)
    exit_code = _EXIT.search(status)
    ports = {
        f"{p['PrivatePort']}/{p['Type']}": p["PublicPort"]
        for p in row.get("Ports") or []
        if _port(p.get("PublicPort")) and _port(p.get("PrivatePort")) and p.get("Type") in PROTOCOLS
    }
    return ObservedContainer(
        id=row["Id"],
        name=(row.get("Names") or ["/"])[0].lstrip("/"),
        labels=row.get("Labels") or {},
        state=row.get("State") or "unknown",
        health=health.group(1) if health else "none",
        exit_code=int(exit_code.group(1)) if exit_code else None,
        host_ports=ports,
        created=int(row.get("Created") or 0),
    )


def _well_formed(row: Any) -> bool:
    """Whether a listing's row can be acted on: an engine is a peer, and what it names
    reaches the database and HAProxy's runtime API (a server name holds the id)."""
    try:
        labels = row.get("Labels") or {}
        return (
            isinstance(row.get("Id"), str)
            and bool(CONTAINER_ID.fullmatch(row["Id"]))
            and isinstance(labels, dict)
            and all(isinstance(value, str) for value in labels.values())
            and isinstance(row.get("Status") or "", str)
            and isinstance(row.get("State") or "", str)
            and isinstance(row.get("Names") or [], list)
            and isinstance(row.get("Ports") or [], list)
            and all(isinstance(port, dict) for port in row.get("Ports") or [])
            and isinstance(row.get("Created") or 0, int)
        )
    except AttributeError:  # not an object
        return False


def list_containers(node: EngineNode, label: str) -> list[ObservedContainer]:
    """Every container on the node carrying `label` ("key" or "key=value"), running or not.

    A listing is cheap, so it gets a short timeout of its own (LIST_TIMEOUT): a converge
    that began listing a node just before the node went silent waits this long before
    it can move the node's replicas, and a node that did not answer in time is only
    left unknown for that look. (It once shared `info`'s 10 s, and replicas of a node
    partitioned just after a look began moved up to 10 s after it was marked down.)
    """
    timeout = LIST_TIMEOUT
    try:
        rows = client(node, timeout).api.containers(all=True, filters={"label": label})
    except SDK_ERRORS as exc:
        raise failure(exc, timeout) from exc
    if not isinstance(rows, list):
        raise EngineError("the engine answered a container listing with something not a list")
    kept = [_observed(row) for row in rows if _well_formed(row)]
    if len(kept) < len(rows):
        log.warning(
            "%s listed %d malformed container(s): left out", node.endpoint, len(rows) - len(kept)
        )
    return kept


def ensure_image(node: EngineNode, image: str, auth: dict[str, str] | None = None) -> None:
    """Pull the image unless the node has it, logging in with `auth` (username and
    password) if given; PullError says why a pull failed.

    A pull may take FLEET_PULL_TIMEOUT seconds in all (waiting for a slot included),
    and at most FLEET_PULL_CONCURRENCY run at once on one node. A pull that got no
    answer is the node's fault (EngineUnreachable) only if the node fails its ping too.
    A pull refused for the registry's certificate makes the next one write its CA again.
    """
    try:
        _ensure_image(node, image, auth)
    except PullError as exc:
        if exc.reason == PULL_UNTRUSTED:
            trust.forget(node, registry_of(image))
        raise


def _ensure_image(node: EngineNode, image: str, auth: dict[str, str] | None) -> None:
    timeout = settings.FLEET_PULL_TIMEOUT
    api = client(node, timeout).api
    try:
        api.inspect_image(image)
        return
    except ImageNotFound:
        pass
    except SDK_ERRORS as exc:
        raise failure(exc, timeout) from exc
    deadline = time.monotonic() + timeout
    repository, tag = parse_repository_tag(image)
    with pull_slot(node, image, deadline):
        try:
            last_error = ""
            lines = api.pull(
                repository, tag or "latest", stream=True, decode=True, auth_config=auth
            )
            for line in lines:
                last_error = line.get("error") or last_error
                if time.monotonic() > deadline:
                    lines.close()
                    raise PullError(
                        f"cannot pull {image}: not done within {timeout:g} s", PULL_TIMED_OUT
                    )
        except SDK_ERRORS as exc:
            silent = any(isinstance(link, requests.exceptions.Timeout) for link in causes(exc))
            if silent:
                ping(node, settings.FLEET_NODE_PING_TIMEOUT)  # the node's fault if this fails
                raise PullError(
                    f"cannot pull {image}: no progress within {timeout:g} s "
                    f"(registry {registry_of(image)} does not answer the node)",
                    PULL_TIMED_OUT,
                ) from exc
            if isinstance(exc, docker.errors.APIError):
                raise pull_failure(image, str(exc.explanation or exc)) from exc
            raise failure(exc, timeout) from exc
    if last_error:
        raise pull_failure(image, last_error)


def run_container(node: EngineNode, spec: ContainerSpec) -> str:
    """Create and start a container, pulling its image first if the node lacks it; return its id."""
    api = client(node, CALL_TIMEOUT).api
    bindings: dict[int | str, Any] = {
        f"{p['container']}/{p['protocol']}": p.get("published") for p in spec.ports
    }
    try:
        host_config = api.create_host_config(
            port_bindings=bindings or None,
            nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
            mem_limit=spec.memory_bytes,
            restart_policy={"Name": "no"},
        )
        options: dict[str, Any] = {
            "command": spec.command or None,
            "environment": spec.env or None,
            "labels": spec.labels,
            "name": spec.name,
            "ports": [(p["container"], p["protocol"]) for p in spec.ports] or None,
            "healthcheck": spec.healthcheck,
            "host_config": host_config,
        }
        try:
            created = api.create_container(spec.image, **options)
        except ImageNotFound:
            # Optimistic: most creations find the image, so pull only when told it is missing.
            ensure_image(node, spec.image, spec.auth)
            created = api.create_container(spec.image, **options)
        container_id = created.get("Id") if isinstance(created, dict) else None
        if not isinstance(container_id, str) or not CONTAINER_ID.fullmatch(container_id):
            raise EngineError(f"the engine named the new container {container_id!r}: not an id")
        api.start(container_id)
    except SDK_ERRORS as exc:
        raise failure(exc, CALL_TIMEOUT) from exc
    return container_id


def remove_container(node: EngineNode, container_id: str, stop_timeout: int = 10) -> None:
    """Stop a container gracefully, then remove it; gone already is fine."""
    api = client(node, CALL_TIMEOUT + stop_timeout).api
    try:
        api.stop(container_id, timeout=stop_timeout)
    except NotFound:
        return
    except SDK_ERRORS:
        pass  # removal with force still ends it
    try:
        api.remove_container(container_id, force=True)
    except NotFound:
        return
    except SDK_ERRORS as exc:
        raise failure(exc, CALL_TIMEOUT) from exc


def follow_logs(node: EngineNode, container_id: str, tail: int = 100) -> "CancellableStream[bytes]":
    """A stream of the container's log lines (bytes), the last `tail` first, then new ones.

    The stream blocks while the container is quiet; close() ends it from another thread.
    """
    try:
        return client(node, CALL_TIMEOUT).api.logs(
            container_id, stream=True, follow=True, tail=tail, timestamps=True
        )
    except SDK_ERRORS as exc:
        raise failure(exc, CALL_TIMEOUT) from exc
