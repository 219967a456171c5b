"""HAProxy's runtime API: the one module that talks to the ingress proxy.

Two unix sockets under FLEET_INGRESS_DIR: the worker's stats socket (admin level) takes
`add server`, `set server`, `del server`, the map commands and the `show` commands; the
master socket (master-worker mode, -S) takes `reload`, which starts a new worker on the
new configuration while the old one finishes the requests it holds.
"""

import csv
import io
import socket
from dataclasses import dataclass

from django.conf import settings

TIMEOUT = 1.0  # a proxy that takes longer is treated as away: the next sync heals


class Unavailable(Exception):
    """The proxy does not answer (not running, or being reloaded)."""


class Refused(Exception):
    """The proxy answered a command with an error."""


def admin_socket():
    return settings.FLEET_INGRESS_DIR / "admin.sock"


def master_socket():
    return settings.FLEET_INGRESS_DIR / "master.sock"


def _talk(path, line, timeout=TIMEOUT):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        sock.sendall(line.encode() + b"\n")
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except OSError as exc:
        raise Unavailable(f"{path}: {exc}") from exc
    finally:
        sock.close()
    return b"".join(chunks).decode(errors="replace")


def command(line, timeout=TIMEOUT):
    """Send one runtime API command; return its answer."""
    return _talk(admin_socket(), line, timeout)


def change(line, ok=("",)):
    """A command that changes something; raise Refused unless its answer starts as expected."""
    answer = command(line).strip()
    if not any(answer.startswith(prefix) for prefix in ok):
        raise Refused(f"{line}: {answer}")
    return answer


def reload():
    """Ask the master for a new worker on the configuration file as it is now."""
    return _talk(master_socket(), "reload", timeout=5)


def running():
    try:
        return "master" in _talk(master_socket(), "show proc")
    except Unavailable:
        return False


@dataclass(frozen=True)
class ServerState:
    """One server of a backend as `show servers state` reports it."""

    name: str
    addr: str
    port: int
    op_state: int  # 0 stopped (down), 1 starting, 2 running (up), 3 stopping
    admin_state: int  # bit flags: 0x01/0x02 maintenance, 0x08 drain

    @property
    def draining(self):
        return bool(self.admin_state & 0x08)

    @property
    def in_maintenance(self):
        return bool(self.admin_state & 0x03)

    @property
    def state(self):
        """One word for people: maint, drain, up or down."""
        if self.in_maintenance:
            return "maint"
        if self.draining:
            return "drain"
        return "up" if self.op_state == 2 else "down"


class NoBackend(Exception):
    """The running configuration has no such backend: a reload must add it."""


def servers_state(backend):
    """{server name: ServerState} of a backend; raise NoBackend or Unavailable."""
    answer = command(f"show servers state {backend}")
    if "Can't find backend" in answer:
        raise NoBackend(backend)
    return parse_servers_state(answer)


def parse_servers_state(text):
    servers = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 19 or line.startswith("#"):
            continue
        servers[fields[3]] = ServerState(
            name=fields[3],
            addr=fields[4],
            port=int(fields[18]),
            op_state=int(fields[5]),
            admin_state=int(fields[6]),
        )
    return servers


def stats(backend=None):
    """`show stat` rows of servers (all backends, or one), as dicts keyed by HAProxy's names."""
    answer = command(f"show stat {backend or -1} 4 -1")
    if answer.startswith("Can't find"):
        return []
    return parse_stats(answer)


def parse_stats(text):
    text = text.lstrip("# ")
    return [row for row in csv.DictReader(io.StringIO(text)) if row.get("svname")]


def show_map(path):
    """{key: value} of a map file as the running proxy holds it."""
    entries = {}
    for line in command(f"show map {path}").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith("0x"):
            entries[parts[1]] = parts[2]
    return entries
