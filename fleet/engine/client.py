"""The one seam to the Docker SDK: a client per node, timeouts, TLS and error translation.

Nothing else in Fleet imports `docker`. Callers get plain values back and see
one exception type, EngineError, whose message is fit to show an operator. Its
Docker-free parts live beside it: errors.py (what goes wrong, and how a
failed pull reads), tls.py (the SSL context), ssh.py (engines behind SSH) and pulls.py
(pull slots); the calls on containers are in containers.py and the events stream in
events.py, on these clients.
"""

import hashlib
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import requests
from docker.errors import DockerException
from docker.tls import TLSConfig

from fleet.engine import ssh, ssh_http, versions
from fleet.engine.errors import (
    EngineError,
    EngineUnreachable,
)
from fleet.engine.node import EngineNode
from fleet.engine.ssh_keys import HostKey
from fleet.engine.tls import ContextAdapter, tls_context

# Calls that change containers may take a while on a busy engine (pulls: FLEET_PULL_TIMEOUT).
CALL_TIMEOUT = 60
# The Engine API version Fleet speaks with a node is the lower of its engine's and Fleet's
# newest (versions.py), learned from the Api-Version header of its pings: never the SDK's
# "auto", which asks /version for every new client, and a daemon stuck behind its runtime
# (containerd) never answers that while it answers pings at once. A process that does not
# ping a node (the watch does, every second) asks again once what it learned is this old,
# since an engine upgraded in place changes its version.
VERSION_KEPT = 60.0
LIST_TIMEOUT = 3  # seconds a container listing may take (see list_containers)
# Calls one client may have in flight at once (inflight.run_parallel's widest pool; the
# metrics sampler's FLEET_METRICS_CONCURRENCY is below it). A smaller connection pool
# discards the extra connections after each burst, so every burst paid new TLS handshakes
# on the engine.
POOL_SIZE = 48
SDK_ERRORS = (DockerException, requests.exceptions.RequestException)

_clients: dict[tuple[str, str, float, str], docker.DockerClient] = {}
_clients_lock = threading.Lock()
# Per node (endpoint and TLS material): its engine's newest API version and when it was seen.
_engine_apis: dict[tuple[str, str], tuple[str, float]] = {}


@dataclass(frozen=True)
class EngineInfo:
    """What a node's engine reports about itself."""

    engine_version: str
    cpus: int
    memory_bytes: int
    containers_running: int
    api_version: str  # the newest Engine API version the engine speaks
    os: str  # linux, windows
    arch: str  # the machine's name for it: x86_64, aarch64
    operating_system: str  # the host's: "Debian GNU/Linux 12 (bookworm)"
    kernel_version: str
    storage_driver: str
    cgroup_version: str  # "1" or "2"


def causes(exc: BaseException | None) -> Iterator[BaseException]:
    """The exception and everything it was raised from, outermost first."""
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def describe(exc: BaseException, timeout: float | None = None) -> str:
    """A short, operator-facing sentence for an exception raised by the SDK."""
    chain = list(causes(exc))
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


def failure(exc: BaseException, timeout: float | None = None) -> EngineError:
    """The EngineError to raise for an SDK exception, EngineUnreachable when nothing answered."""
    silent = (requests.exceptions.Timeout, requests.exceptions.ConnectionError)
    unreachable = any(isinstance(link, silent) for link in causes(exc))
    return (EngineUnreachable if unreachable else EngineError)(describe(exc, timeout))


class _ContextTLS(TLSConfig):
    """The SDK's TLS hook, given a loaded context instead of file paths to read again."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context

    def configure_client(self, client: docker.APIClient) -> None:
        client.verify = True
        client.trust_env = False  # no REQUESTS_CA_BUNDLE, no proxies: the node's CA only
        client.mount("https://", ContextAdapter(self.context, POOL_SIZE))


def _node_key(node: EngineNode) -> tuple[str, str]:
    material = (node.tls_ca, node.tls_cert, node.tls_key, node.ssh_key, node.ssh_host_key)
    return (node.endpoint, hashlib.sha256("|".join(material).encode()).hexdigest())


def _made(node: EngineNode, timeout: float, version: str) -> docker.DockerClient:
    if not node.endpoint.startswith("ssh://"):
        return docker.DockerClient(
            base_url=node.endpoint,
            version=version,
            timeout=timeout,  # type: ignore[arg-type]  # a float: the SDK hands it to requests
            max_pool_size=POOL_SIZE,
            tls=_ContextTLS(tls_context(node)) if node.uses_tls else False,
        )
    # The SDK's own ssh:// transport reads keys from ~/.ssh, trusts ~/.ssh/known_hosts alone
    # and cannot close a stream from another thread. Fleet's hands the SDK a local socket per
    # connection, as a unix:// engine's would be (ssh.py): so the client is made as for one,
    # which connects to nothing until asked, and Fleet's adapter is mounted over its own.
    made = docker.DockerClient(
        base_url="unix://",
        version=version,
        timeout=timeout,  # type: ignore[arg-type]
        max_pool_size=POOL_SIZE,
    )
    made.api.mount(
        "http+docker://",
        ssh_http.SSHAdapter(ssh.link(node, "|".join(_node_key(node))), POOL_SIZE),
    )
    return made


def host_key_presented(node: EngineNode) -> HostKey | None:
    """The host key an SSH node's host presented to this process, once it connected."""
    return ssh.presented("|".join(_node_key(node)))


def _client(node: EngineNode, timeout: float, version: str) -> docker.DockerClient:
    """The cached client for this node, timeout and API version; making one calls nothing."""
    key = (*_node_key(node), timeout, version)
    with _clients_lock:
        cached = _clients.get(key)
    if cached is not None:
        return cached
    try:
        made = _made(node, timeout, version)
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise failure(exc, timeout) from exc
    with _clients_lock:
        _clients.setdefault(key, made)
        return _clients[key]


def client(node: EngineNode, timeout: float) -> docker.DockerClient:
    """A cached Docker client for this node whose every call gives up after `timeout`
    seconds, speaking the API version its engine and Fleet share (a ping learns it)."""
    return _client(node, timeout, versions.spoken(engine_api(node, timeout)))


def engine_api(node: EngineNode, timeout: float) -> str:
    """The newest Engine API version the node's engine speaks, as a ping of this process
    found it at most VERSION_KEPT seconds ago, else as a ping now finds it."""
    known = _engine_apis.get(_node_key(node))
    if known is not None and time.monotonic() - known[1] < VERSION_KEPT:
        return known[0]
    return _ping(node, timeout)


def _ping(node: EngineNode, timeout: float) -> str:
    """GET /_ping, unversioned (any engine answers it); the engine's Api-Version, kept."""
    # One client for every ping, the timeout given per call: the watch shortens the ping
    # that reaches a down deadline, and a client per timeout would pile up.
    # Any: the SDK's private helpers, which its stubs leave out.
    api: Any = _client(node, CALL_TIMEOUT, versions.OLDEST).api
    try:
        response = api._get(api._url("/_ping", versioned_api=False), timeout=timeout)
        answered = api._result(response)
    except SDK_ERRORS as exc:
        raise failure(exc, timeout) from exc
    if answered != "OK":
        raise EngineError("engine answered its ping with something other than OK")
    found = response.headers.get("Api-Version")
    versions.spoken(found)  # an engine Fleet cannot speak with is refused here
    _engine_apis[_node_key(node)] = (found, time.monotonic())
    return found


def ping(node: EngineNode, timeout: float) -> None:
    """Whether the engine is alive: GET /_ping, the cheapest call it answers.

    Liveness is this and nothing else: a daemon busy with pulls may take seconds to
    answer `info` or a listing while it answers a ping at once. Raises EngineUnreachable
    when nothing answers within `timeout`, EngineError when it answers but not OK, or
    speaks no Engine API version Fleet can use (versions.EngineTooOld).
    """
    _ping(node, timeout)


def info(node: EngineNode, timeout: float) -> EngineInfo:
    """Ask a node's engine for its version and size (slower than a ping on a busy engine)."""
    try:
        found = client(node, timeout).info()
    except SDK_ERRORS as exc:
        raise failure(exc, timeout) from exc
    return EngineInfo(
        engine_version=str(found.get("ServerVersion", "")),
        cpus=int(found.get("NCPU") or 0),
        memory_bytes=int(found.get("MemTotal") or 0),
        containers_running=int(found.get("ContainersRunning") or 0),
        api_version=engine_api(node, timeout),
        os=_fact(found, "OSType", 16),
        arch=_fact(found, "Architecture", 32),
        operating_system=_fact(found, "OperatingSystem", 128),
        kernel_version=_fact(found, "KernelVersion", 128),
        storage_driver=_fact(found, "Driver", 64),
        cgroup_version=_fact(found, "CgroupVersion", 8),
    )


def _fact(found: dict[str, Any], key: str, longest: int) -> str:
    """One of `info`'s strings, cut to what the database keeps ("" when absent)."""
    value = found.get(key)
    return str(value)[:longest] if isinstance(value, str | int) else ""
