"""The one seam to the Docker SDK: a client per node, timeouts, TLS and error translation.

Nothing else in Fleet imports `docker`. Callers get plain values back and see
one exception type, EngineError, whose message is fit to show an operator.
"""

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import docker
import requests
from docker.errors import DockerException
from docker.tls import TLSConfig

_clients = {}
_clients_lock = threading.Lock()
_tls_dir = None


class EngineError(Exception):
    """A Docker engine could not be reached or refused a request."""


@dataclass(frozen=True)
class EngineInfo:
    """What a node's engine reports about itself."""

    engine_version: str
    cpus: int
    memory_bytes: int
    containers_running: int


def _chain(exc):
    """The exception and everything it was raised from, outermost first."""
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def describe(exc, timeout=None):
    """A short, operator-facing sentence for an exception raised by the SDK."""
    chain = list(_chain(exc))
    for link in chain:
        if isinstance(link, requests.exceptions.Timeout):
            return f"no answer within {timeout:g} s" if timeout else "timed out"
        if isinstance(link, requests.exceptions.ConnectionError):
            cause = chain[-1]
            text = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
            return f"cannot connect: {text}"
        if isinstance(link, docker.errors.APIError):
            return f"engine refused: {link.explanation or link}"
    return str(exc) or type(exc).__name__


def _write_tls_files(node):
    """Certificates must be files for the SDK; keep them private to this process."""
    global _tls_dir
    if _tls_dir is None:
        _tls_dir = Path(tempfile.mkdtemp(prefix="fleet-tls-"))
    digest = hashlib.sha256(f"{node.tls_ca}|{node.tls_cert}|{node.tls_key}".encode()).hexdigest()
    folder = _tls_dir / digest[:16]
    folder.mkdir(mode=0o700, exist_ok=True)
    paths = {}
    for field in ("tls_ca", "tls_cert", "tls_key"):
        pem = getattr(node, field)
        if pem:
            path = folder / f"{field}.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(pem)
            paths[field] = str(path)
    return TLSConfig(
        client_cert=(paths["tls_cert"], paths["tls_key"]) if "tls_cert" in paths else None,
        ca_cert=paths.get("tls_ca"),
        verify=bool(paths.get("tls_ca")),
    )


def _cache_key(node, timeout):
    secret = hashlib.sha256(f"{node.tls_ca}|{node.tls_cert}|{node.tls_key}".encode()).hexdigest()
    return (node.endpoint, secret, timeout)


def client(node, timeout):
    """A cached Docker client for this node whose every call gives up after `timeout` seconds."""
    key = _cache_key(node, timeout)
    with _clients_lock:
        cached = _clients.get(key)
    if cached is not None:
        return cached
    try:
        made = docker.DockerClient(
            base_url=node.endpoint,
            version="auto",
            timeout=timeout,
            tls=_write_tls_files(node) if node.uses_tls else False,
        )
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise EngineError(describe(exc, timeout)) from exc
    with _clients_lock:
        _clients.setdefault(key, made)
        return _clients[key]


def forget(node):
    """Drop cached clients of a node, e.g. after its endpoint or certificates changed."""
    with _clients_lock:
        for key in [k for k in _clients if k[0] == node.endpoint]:
            _clients.pop(key).close()


def probe(node, timeout):
    """Ask a node's engine for its version and size; raise EngineError when it does not answer."""
    try:
        info = client(node, timeout).info()
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise EngineError(describe(exc, timeout)) from exc
    return EngineInfo(
        engine_version=str(info.get("ServerVersion", "")),
        cpus=int(info.get("NCPU") or 0),
        memory_bytes=int(info.get("MemTotal") or 0),
        containers_running=int(info.get("ContainersRunning") or 0),
    )


def events(node, since=None):
    """Open the node's stream of container events, decoded, from `since` on.

    The stream blocks while the engine is quiet; it ends when the engine goes
    away, and close() ends it from another thread.
    """
    try:
        return client(node, 10).api.events(
            since=since, filters={"type": ["container"]}, decode=True
        )
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise EngineError(describe(exc)) from exc
