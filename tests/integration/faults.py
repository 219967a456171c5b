"""Faults made on the lab for the tests: silent partitions, stalled engines and a registry
that never answers."""

import contextlib
import os
import signal
import socket
import subprocess
import threading


def netns_of(lab, name):
    """The network namespace of a lab node (lab-2 of lab "t" lives in fleet-t-2)."""
    return f"/run/netns/fleet-{lab.name}-{name.rsplit('-', 1)[1]}"


def iptables(netns, *args, check=True):
    subprocess.run(["nsenter", f"--net={netns}", "iptables", "-w", *args], check=check)


@contextlib.contextmanager
def partitioned(lab, *names):
    """Drop every packet to and from the nodes' namespaces: no connection is closed, so
    only timeouts and keepalives can notice."""
    rules = [("INPUT", "-j", "DROP"), ("OUTPUT", "-j", "DROP")]
    spaces = [netns_of(lab, name) for name in names]
    try:
        for ns in spaces:
            for chain, *rule in rules:
                iptables(ns, "-I", chain, "1", *rule)
        yield
    finally:
        for ns in spaces:
            for rule in rules:
                iptables(ns, "-D", *rule, check=False)


@contextlib.contextmanager
def hanging_registry(lab, port=5001):
    """A socket on the lab's bridge that accepts connections and never answers; yields
    its "host:port" for image names. Pulls from it hang until the engine gives up."""
    server = socket.create_server((lab.gateway, port))
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)  # kept open, never read from or written to

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"{lab.gateway}:{port}"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()


def containerd_of(lab, name):
    """The pid of a lab node's containerd, which its dockerd started as a daemon of its own."""
    config = f"{lab.run}/{lab.name}-{name.rsplit('-', 1)[1]}/containerd/containerd.toml"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().split(b"\0")
            if args[0].endswith(b"containerd") and config.encode() in args:
                return int(entry)
    raise LookupError(f"no containerd runs for {name} ({config})")


@contextlib.contextmanager
def stalled(lab, name):
    """Freeze a node's containerd: its dockerd still answers /_ping and lists containers,
    but /info, creates, starts and stops hang (an engine stuck behind its runtime)."""
    pid = containerd_of(lab, name)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
