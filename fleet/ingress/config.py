"""HAProxy's configuration, written by Fleet under FLEET_INGRESS_DIR, and its hitless reload.

The file holds one backend per routed service, with the servers it should have at the
moment it is written, so that a new worker serves at once; the runtime API keeps them
current between reloads (dynamic servers vanish at a reload, which is why they are
written here too). Routes live in a map file the runtime API edits in place.
"""

import fcntl
import logging
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings

from fleet.ingress import haproxy

log = logging.getLogger(__name__)

# Checked every 500 ms, down after 2 failures, up after 1 success: a dead replica is out
# within about 1.5 s without waiting for Fleet to see its node go.
CHECK = "check inter 500 fall 2 rise 1"

GLOBAL = """\
# Written by Fleet (fleet/ingress/config.py): edits here are lost at the next change.
global
    stats socket {admin} mode 600 level admin expose-fd listeners
    stats timeout 10s
    # An old worker left by a reload finishes its requests, for at most this long.
    hard-stop-after 60s

defaults
    mode http
    timeout connect 500ms
    timeout check 500ms
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 10s
    # A request whose connection failed or found a dead replica goes to another one.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout

frontend fleet-ingress
    bind {bind}
    http-request set-var(txn.host) req.hdr(host),field(1,:),lower
    http-request set-var(txn.path) path
    http-request set-var(txn.route) var(txn.host),concat(,txn.path,)
    use_backend %[var(txn.route),map_beg({routes})]
    default_backend fleet-no-route

backend fleet-no-route
    http-request return status 404 content-type text/plain string "No such Fleet service.\\n"
"""

BACKEND = """
backend {name}
    balance roundrobin
"""


@dataclass(frozen=True)
class Server:
    """A server the proxy should have: one serving replica's container."""

    name: str
    addr: str
    port: int


@dataclass
class Backend:
    name: str
    route: str
    servers: list = field(default_factory=list)


def render(backends, bind, admin, routes_path):
    """The configuration file's text and the route map's text."""
    text = GLOBAL.format(bind=bind, admin=admin, routes=routes_path)
    for backend in backends:
        text += BACKEND.format(name=backend.name)
        for server in backend.servers:
            text += f"    server {server.name} {server.addr}:{server.port} {CHECK}\n"
    routes_text = "".join(f"{b.route} {b.name}\n" for b in backends)
    return text, routes_text


def paths():
    folder = settings.FLEET_INGRESS_DIR
    return folder / "haproxy.cfg", folder / "routes.map"


@contextmanager
def locked():
    """One writer of the files at a time, across every Fleet process."""
    folder = settings.FLEET_INGRESS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def write(current_backends):
    """Write the configuration and the map as current_backends() says, read under the lock
    the caller holds; return whether the configuration changed (the caller reloads). A file
    HAProxy refuses is not kept."""
    cfg, routes_path = paths()
    admin = haproxy.admin_socket()
    text, routes_text = render(current_backends(), settings.FLEET_INGRESS_BIND, admin, routes_path)
    old = cfg.read_text() if cfg.exists() else None
    routes_path.write_text(routes_text)
    if _without_servers(old) == _without_servers(text):
        return False
    candidate = cfg.with_suffix(".new")
    candidate.write_text(text)
    checked = subprocess.run(
        [settings.FLEET_INGRESS_HAPROXY, "-c", "-q", "-f", str(candidate)],
        capture_output=True,
        text=True,
        check=False,
    )
    if checked.returncode != 0:
        raise RuntimeError(f"HAProxy refuses the configuration: {checked.stderr.strip()}")
    candidate.replace(cfg)
    return True


def _without_servers(text):
    # Servers change through the runtime API; only a new or removed backend needs a reload.
    if text is None:
        return None
    return [line for line in text.splitlines() if not line.strip().startswith("server ")]


def apply(current_backends):
    """Write the files as current_backends() says and, when a backend came or went, reload;
    wait for the new worker."""
    with locked():
        if write(current_backends) and haproxy.running():
            haproxy.reload()
            _wait_for_worker()


def _wait_for_worker(timeout=3.0):
    # The old worker answers on the socket until the new one takes it over.
    cfg, _ = paths()
    wanted = {
        line.split()[1] for line in cfg.read_text().splitlines() if line.startswith("backend")
    }
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = haproxy.command("show backend")
            if wanted <= set(answer.split()):
                return
        except haproxy.Unavailable:
            pass
        time.sleep(0.05)
    log.warning("the ingress did not show its new backends within %.0f s", timeout)
