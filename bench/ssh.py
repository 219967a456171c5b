"""SSH: what reaching an engine over SSH costs, beside an engine on TLS, in one run.

A stack of its own with two nodes: lab-1 on mutual TLS (tcp://...:2376), lab-2 reachable
only over SSH (its engine on its socket alone, behind its own sshd; `lab up --ssh lab-2`).
  ping       Fleet's own ping (engine.ping: GET /_ping, as the watch sends one a second),
             PINGS times per node on its pooled connection; and the first ping of a new
             client, COLD times (a TLS handshake; an SSH login and a dial-stdio started).
  freshness  a container of a 10-replica service (five a node) killed through its engine's
             API, round robin over the nodes, timed until the watch has written its
             replica's exit to the database; the floor is a plain events listener on the
             same engine (for lab-2 on its socket: the bench's own view, not through SSH).

    python -m bench.ssh [--pings 300] [--kills 40]
"""

import argparse
import importlib
import os
import threading
import time

from bench.freshness import SERVICE, EventsListener
from bench.harness import (
    ENV,
    api,
    engines,
    fleet_stack,
    fmt_ratio,
    percentile,
    raise_fd_limit,
    record,
    remove_service,
    row,
    table,
    wait_for,
)

TLS_NODE, SSH_NODE = "lab-1", "lab-2"
REPLICAS = 10
COLD = 10


def setup_django():
    """Django in this process, on the stack's database (which the stack migrated)."""
    os.environ.update(ENV)
    os.environ["DJANGO_SETTINGS_MODULE"] = "fleet.settings"
    import django

    django.setup()
    from django.db import connections

    connections.close_all()  # an earlier benchmark's, on a database since made anew


def ms(since):
    return (time.perf_counter() - since) * 1000


def forget_clients():
    """Drop this process's clients and SSH connections: the next call makes new ones."""
    client_module = importlib.import_module("fleet.engine.client")
    ssh_module = importlib.import_module("fleet.engine.ssh")
    for made in client_module._clients.values():
        made.close()
    for link in ssh_module._links.values():
        for transport in link.transports:
            transport.close()
    client_module._clients.clear()
    client_module._engine_apis.clear()
    ssh_module._links.clear()


def ping_times(node, pings):
    """(warm pings in ms, first pings of a new client in ms) of one node."""
    from fleet import engine

    cold = []
    for _ in range(COLD):
        forget_clients()
        began = time.perf_counter()
        engine.ping(node, 5)
        cold.append(ms(began))
    warm = []
    for _ in range(pings):
        began = time.perf_counter()
        engine.ping(node, 5)
        warm.append(ms(began))
    return warm, cold


def exit_written(container_id):
    from fleet.models import Replica

    rows = Replica.objects.filter(container_id=container_id, state=Replica.State.EXITED)
    return rows.exists()


def kill_times(clients, kills, listener):
    """{node: [(kill -> row says exited, kill -> listener heard the die)]} in ms."""
    found = {name: [] for name in clients}
    names = sorted(clients)
    for i in range(kills):
        name = names[i % len(names)]
        filters = {"label": f"fleet.service={SERVICE}", "status": "running"}
        running = clients[name].containers.list(filters=filters)
        if not running:
            time.sleep(0.5)
            continue
        victim = running[0]
        began = time.perf_counter()
        killing = threading.Thread(target=victim.kill)
        killing.start()
        while not exit_written(victim.id):
            if ms(began) > 15_000:
                raise TimeoutError(
                    f"the kill of {victim.name} on {name} never reached the database"
                )
            time.sleep(0.002)
        written = ms(began)
        killing.join()
        heard = listener.arrivals.get(victim.id)
        found[name].append((written, (heard - began) * 1000 if heard else None))
        time.sleep(0.5)  # its replacement starts before the next kill on this node
    return found


def measure(stack, pings=300, kills=40):
    setup_django()
    from fleet.models import Node

    nodes = {node.name: node for node in Node.objects.filter(name__in=[TLS_NODE, SSH_NODE])}
    wait_for(
        lambda: set(Node.objects.values_list("status", flat=True)) == {"ready"},
        30,
        "both nodes ready",
    )
    pinged = {name: ping_times(node, pings) for name, node in nodes.items()}

    spec = {"name": SERVICE, "image": stack.lab["images"]["demo_v1"], "replicas": REPLICAS}
    api(stack, "POST", "/api/services/", {**spec, "update": {"monitor": 0}})
    wait_for(
        lambda: api(stack, "GET", f"/api/services/{SERVICE}/")["running_replicas"] == REPLICAS,
        120,
        "the service to run",
    )
    clients = engines(stack)
    listener = EventsListener(clients)
    try:
        killed = kill_times(clients, kills, listener)
    finally:
        listener.close()
    remove_service(stack, SERVICE)
    return report(pinged, killed)


def summary(values):
    return {
        "p50_ms": round(percentile(values, 50), 2),
        "p99_ms": round(percentile(values, 99), 2),
        "max_ms": round(max(values), 2),
        "n": len(values),
    }


def report(pinged, killed):
    details = {}
    for name, (warm, cold) in pinged.items():
        details[name] = {"ping": summary(warm), "first_ping": summary(cold)}
        times = killed[name]
        details[name]["kill_to_database"] = summary([w for w, _ in times])
        heard = [(w, h) for w, h in times if h is not None]
        details[name]["listener"] = summary([h for _, h in heard])
        details[name]["added"] = summary([w - h for w, h in heard])
    tls, ssh = details[TLS_NODE], details[SSH_NODE]
    rows = []
    for key, what in (
        ("ping", "ping (GET /_ping) on a pooled connection"),
        ("first_ping", "first ping of a new client (handshake or login)"),
        ("kill_to_database", "container kill -> its replica's exit in the database"),
        ("added", "Fleet's added latency (database less events listener)"),
    ):
        for p in ("p50", "p99"):
            over_ssh, over_tls = ssh[key][f"{p}_ms"], tls[key][f"{p}_ms"]
            rows.append(
                row(
                    "ssh",
                    f"{what}, {p}, SSH node (TLS node as reference)",
                    f"{over_ssh:.1f} ms",
                    f"{over_tls:.1f} ms",
                    fmt_ratio(over_ssh, over_tls),
                )
            )
    return rows, details


def on_own_stack(pings=300, kills=40):
    """The benchmark on a stack of two nodes, lab-2 behind SSH."""
    with fleet_stack(nodes=2, ssh=[SSH_NODE]) as stack:
        return measure(stack, pings, kills)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=300)
    parser.add_argument("--kills", type=int, default=40)
    options = parser.parse_args()
    raise_fd_limit()
    rows, details = on_own_stack(options.pings, options.kills)
    record("ssh", rows, details)
    table(rows)


if __name__ == "__main__":
    main()
