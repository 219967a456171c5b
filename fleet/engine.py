"""The one seam to the Docker SDK: a client per node, timeouts, TLS and error translation.

Nothing else in Fleet imports `docker`. Callers get plain values back and see
one exception type, EngineError, whose message is fit to show an operator.
"""

import hashlib
import os
import re
import ssl
import threading
from dataclasses import dataclass, field

import docker
import requests
from django.conf import settings
from docker.errors import DockerException, ImageNotFound, NotFound
from docker.tls import TLSConfig
from docker.utils import parse_repository_tag

# Calls that change containers may take a while on a busy engine; pulls longer still.
CALL_TIMEOUT = 60
PULL_TIMEOUT = 600
SDK_ERRORS = (DockerException, requests.exceptions.RequestException)

_clients = {}
_clients_lock = threading.Lock()


class EngineError(Exception):
    """A Docker engine could not be reached or refused a request."""


class EngineUnreachable(EngineError):
    """The engine did not answer at all (refused connection, timeout): the node's fault,
    not the request's."""


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


def failure(exc, timeout=None):
    """The EngineError to raise for an SDK exception, EngineUnreachable when nothing answered."""
    silent = (requests.exceptions.Timeout, requests.exceptions.ConnectionError)
    unreachable = any(isinstance(link, silent) for link in _chain(exc))
    return (EngineUnreachable if unreachable else EngineError)(describe(exc, timeout))


class _ContextAdapter(requests.adapters.HTTPAdapter):
    """HTTPS through one SSL context, which holds the node's CA and client certificate."""

    def __init__(self, context):
        self.context = context
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, ssl_context=self.context, **kwargs)

    def cert_verify(self, conn, url, verify, cert):
        # Always verify, against the context's CA alone: requests would add its own bundle.
        conn.cert_reqs, conn.ca_certs, conn.ca_cert_dir = "CERT_REQUIRED", None, None


class _ContextTLS(TLSConfig):
    """The SDK's TLS hook, given a loaded context instead of file paths to read again."""

    def __init__(self, context):
        self.context = context

    def configure_client(self, client):
        client.verify = True
        client.trust_env = False  # no REQUESTS_CA_BUNDLE, no proxies: the node's CA only
        client.mount("https://", _ContextAdapter(self.context))


def _pem_file(pem):
    """An anonymous in-memory file holding pem, for the moment ssl reads it: ssl loads a
    client certificate only from a path, and key material must never rest in a file."""
    fd = os.memfd_create("fleet-tls", os.MFD_CLOEXEC)
    os.write(fd, pem.encode())
    return fd


def _tls_context(node):
    """The node's SSL context: its engine verified against the node's CA (never without one),
    Fleet's client certificate loaded once, so every new connection uses it as it is."""
    if not node.tls_ca:
        raise EngineError("TLS without the engine's CA certificate is refused: set tls_ca")
    if node.tls_key and "-----BEGIN" not in node.tls_key:
        raise EngineError(
            "the node's TLS key cannot be opened with the current FLEET_SECRETS_KEY "
            "(or SECRET_KEY); set the key again"
        )
    fds = []
    try:
        context = ssl.create_default_context(cadata=node.tls_ca)
        if node.tls_cert:
            fds.append(_pem_file(node.tls_cert))
            fds.append(_pem_file(node.tls_key))
            context.load_cert_chain(*(f"/proc/self/fd/{fd}" for fd in fds))
    except (ssl.SSLError, ValueError) as exc:
        raise EngineError(f"unusable TLS material: {exc}") from exc
    finally:
        for fd in fds:
            os.close(fd)
    return context


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
            tls=_ContextTLS(_tls_context(node)) if node.uses_tls else False,
        )
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise failure(exc, timeout) from exc
    with _clients_lock:
        _clients.setdefault(key, made)
        return _clients[key]


def probe(node, timeout):
    """Ask a node's engine for its version and size; raise EngineError when it does not answer."""
    try:
        info = client(node, timeout).info()
    except SDK_ERRORS as exc:
        raise failure(exc, timeout) from exc
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
        raise failure(exc) from exc


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one replica's container."""

    name: str
    image: str
    labels: dict
    command: list = field(default_factory=list)
    env: dict = field(default_factory=dict, repr=False)  # holds opened secrets: never shown
    ports: list = field(default_factory=list)  # [{"container", "published", "protocol"}]
    healthcheck: dict | None = None  # Docker's form, durations in nanoseconds
    cpus: float | None = None
    memory_bytes: int | None = None


@dataclass(frozen=True)
class ObservedContainer:
    """One container as a listing shows it."""

    id: str
    name: str
    labels: dict
    state: str  # Docker's: created, running, exited, dead, restarting, paused, removing
    health: str  # none, starting, healthy, unhealthy
    exit_code: int | None
    host_ports: dict  # {"80/tcp": 49153}
    created: int


_HEALTH = re.compile(r"\((?:health: )?(starting|healthy|unhealthy)\)")
_EXIT = re.compile(r"Exited \((-?\d+)\)")


def _observed(row):
    status = row.get("Status") or ""
    health = _HEALTH.search(status)
    exit_code = _EXIT.search(status)
    ports = {
        f"{p['PrivatePort']}/{p['Type']}": p["PublicPort"]
        for p in row.get("Ports") or []
        if p.get("PublicPort")
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


def list_containers(node, label):
    """Every container on the node carrying `label` ("key" or "key=value"), running or not.

    A listing is cheap, so it gets the health check's short timeout: a frozen
    engine must not hold a reconcile or a converge for long.
    """
    timeout = settings.FLEET_NODE_CHECK_TIMEOUT
    try:
        rows = client(node, timeout).api.containers(all=True, filters={"label": label})
    except SDK_ERRORS as exc:
        raise failure(exc, timeout) from exc
    return [_observed(row) for row in rows]


def _auth_for(image):
    registry = image.split("/", 1)[0] if "/" in image else ""
    if "." not in registry and ":" not in registry and registry != "localhost":
        registry = "docker.io"
    return settings.FLEET_REGISTRY_AUTH.get(registry)


def ensure_image(node, image):
    """Pull the image unless the node has it; EngineError says why a pull failed."""
    api = client(node, PULL_TIMEOUT).api
    try:
        api.inspect_image(image)
        return
    except ImageNotFound:
        pass
    except SDK_ERRORS as exc:
        raise failure(exc, PULL_TIMEOUT) from exc
    repository, tag = parse_repository_tag(image)
    try:
        last_error = ""
        for line in api.pull(
            repository, tag or "latest", stream=True, decode=True, auth_config=_auth_for(image)
        ):
            last_error = line.get("error") or last_error
        if last_error:
            raise EngineError(f"cannot pull {image}: {last_error}")
    except SDK_ERRORS as exc:
        raise EngineError(f"cannot pull {image}: {describe(exc, PULL_TIMEOUT)}") from exc


def run_container(node, spec):
    """Create and start a container, pulling its image first if the node lacks it; return its id."""
    api = client(node, CALL_TIMEOUT).api
    bindings = {f"{p['container']}/{p['protocol']}": p.get("published") for p in spec.ports}
    try:
        host_config = api.create_host_config(
            port_bindings=bindings or None,
            nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
            mem_limit=spec.memory_bytes,
            restart_policy={"Name": "no"},
        )
        options = {
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
            ensure_image(node, spec.image)
            created = api.create_container(spec.image, **options)
        api.start(created["Id"])
    except SDK_ERRORS as exc:
        raise failure(exc, CALL_TIMEOUT) from exc
    return created["Id"]


def remove_container(node, container_id, stop_timeout=10):
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


def follow_logs(node, container_id, tail=100):
    """A stream of the container's log lines (bytes), the last `tail` first, then new ones.

    The stream blocks while the container is quiet; close() ends it from another thread.
    """
    try:
        return client(node, CALL_TIMEOUT).api.logs(
            container_id, stream=True, follow=True, tail=tail, timestamps=True
        )
    except SDK_ERRORS as exc:
        raise failure(exc, CALL_TIMEOUT) from exc
