"""Faults a benchmark makes on one lab node, each with its way back, and probes that look at
an engine the way an operator would.

  kill       SIGKILL the node's dockerd; healed by starting it again;
  partition  drop every packet into and out of the node's netns (iptables INPUT and OUTPUT,
             inserted first); no connection is closed, so only timeouts notice; healed by
             deleting the same two rules;
  freeze     SIGSTOP the node's dockerd (its containers run on); healed by SIGCONT;
  stall      SIGSTOP the node's containerd (its dockerd and containers run on): the engine
             answers `/_ping` and lists containers, but `/info`, creates, starts and stops
             hang; healed by SIGCONT;
and, not a node fault, `SilentRegistry`: a registry on the lab bridge that accepts
connections and never answers, so that pulls of an image from it hang (each until the
engine's own TLS handshake timeout of 10 s; here that alone does not slow `/info`).

Everything here aims only at the lab's own addresses and namespaces.
"""

import http.client
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from contextlib import suppress

from bench.harness import ENV
from lab import Lab
from lab.host import find_procs, host_env

KINDS = ("kill", "partition", "freeze")
DROP = ("-j", "DROP")


def lab():
    return Lab(ENV["FLEET_LAB_NAME"], ENV["FLEET_LAB_SUBNET"])


def netns(name):
    """The netns file of a lab node (the lab names them; it exposes no accessor for it)."""
    return lab()._node_of(name).netns  # noqa: SLF001 - the lab's own naming, read only


def iptables(name, *args, check=True):
    return subprocess.run(
        ["nsenter", f"--net={netns(name)}", "iptables", "-w", *args],
        env=host_env(),
        capture_output=True,
        text=True,
        check=check,
        timeout=30,
    )


def containerd(name):
    """The pid of the node's containerd (dockerd starts it as a daemon of its own)."""
    config = f"{lab()._node_of(name).exec_root}/containerd/containerd.toml"  # noqa: SLF001
    for pid in find_procs([config]):
        with suppress(OSError):
            if open(f"/proc/{pid}/comm").read().strip() == "containerd":  # noqa: SIM115
                return pid
    raise RuntimeError(f"no containerd found for {name}")


def apply(kind, name):
    """Make fault `kind` on node `name`."""
    if kind == "kill":
        lab().kill_node(name)
    elif kind == "partition":
        for chain in ("INPUT", "OUTPUT"):
            iptables(name, "-I", chain, "1", *DROP)
    elif kind == "freeze":
        lab().kill_node(name, signal.SIGSTOP)
    elif kind == "stall":
        os.kill(containerd(name), signal.SIGSTOP)
    else:
        raise ValueError(f"unknown fault {kind!r}")


def heal(kind, name):
    """Undo fault `kind` on node `name` (safe to call twice)."""
    if kind == "kill":
        lab().start_node(name)
    elif kind == "partition":
        for chain in ("INPUT", "OUTPUT"):
            while iptables(name, "-C", chain, *DROP, check=False).returncode == 0:
                iptables(name, "-D", chain, *DROP)
    elif kind == "freeze":
        lab().kill_node(name, signal.SIGCONT)
    elif kind == "stall":
        with suppress(RuntimeError, ProcessLookupError):
            os.kill(containerd(name), signal.SIGCONT)
    else:
        raise ValueError(f"unknown fault {kind!r}")


def heal_all(names):
    """Whatever a crashed run left: thaw, unpartition and start every node."""
    for name in names:
        for kind in ("stall", "freeze", "partition", "kill"):
            heal(kind, name)


def address(node):
    """host:port of a node's engine from its lab entry ({"endpoint": "tcp://a:2376", ...})."""
    return node["endpoint"].removeprefix("tcp://")


def engine_get(node, path, timeout):
    """(seconds, HTTP status) of GET path on the node's engine over TCP, status None if no
    answer in time; TCP (and TLS where the lab gives it), as Fleet reaches it, so that a
    partition shows."""
    host, port = address(node).rsplit(":", 1)
    started = time.perf_counter()
    tls = node.get("tls")
    if tls:
        context = ssl.create_default_context(cafile=tls["ca"])
        context.load_cert_chain(tls["cert"], tls["key"])
        conn = http.client.HTTPSConnection(host, int(port), timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException):
        status = None
    finally:
        conn.close()
    return round(time.perf_counter() - started, 3), status


def pings(node, timeout=1.0):
    return engine_get(node, "/_ping", timeout)[1] == 200


class SilentRegistry:
    """A socket on the lab bridge that accepts connections and never answers.

    An image named after it makes every pull hang (in the TLS handshake, as the engines do
    not trust it for plain HTTP) until the engine's own timeout; each retry hangs again."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind((lab().gateway, 0))
        self.sock.listen(128)
        self.sock.settimeout(0.5)
        self.held = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    @property
    def address(self):
        return "{}:{}".format(*self.sock.getsockname())

    def image(self, path="bench/stall:1"):
        return f"{self.address}/{path}"

    def _hold(self):
        while not self.stopped.is_set():
            with suppress(TimeoutError, OSError):
                self.held.append(self.sock.accept()[0])  # kept open, never read

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(5)
        for conn in [*self.held, self.sock]:
            conn.close()
