"""What a benchmark reads of Fleet (through its API) and of the engines, to time and count."""

import time
import urllib.parse
from collections import Counter
from datetime import datetime

from bench.harness import api, wait_for


def running_on(clients, names, filters):
    total = 0
    for name in names:
        total += len(clients[name].api.containers(filters={**filters, "status": "running"}))
    return total


def node_status(stack, name):
    return api(stack, "GET", f"/api/nodes/{name}/")["status"]


def wait_ready(stack, names, timeout=90):
    """Until Fleet shows every named node ready; seconds it took."""
    started = time.perf_counter()
    for name in names:
        wait_for(lambda n=name: node_status(stack, n) == "ready", timeout, f"{name} ready", 0.1)
    return round(time.perf_counter() - started, 3)


def replica_spread(stack, service):
    rows = api(stack, "GET", f"/api/services/{service}/replicas/")
    return Counter(r["node"] for r in rows if r["state"] == "running")


def start_spread(stack, service, replicas, image):
    """Create the service and wait until it runs; return {node: running replicas}.

    Not asserted even: a node that flapped may be held down by Fleet and take none."""
    spec = {"name": service, "image": image, "replicas": replicas, "update": {"monitor": 0}}
    api(stack, "POST", "/api/services/", spec)
    wait_for(
        lambda: sum(replica_spread(stack, service).values()) == replicas,
        120,
        f"{service} to run",
        0.2,
    )
    return dict(replica_spread(stack, service))


def pick_victim(spread, candidates, turn):
    """The candidate holding the most replicas; ties go round by `turn`, so that no one node
    takes every fault (and Fleet's flap hold-down is not what a run measures)."""
    order = candidates[turn % len(candidates) :] + candidates[: turn % len(candidates)]
    return max(order, key=lambda name: spread.get(name, 0))


def status_events(stack, since, node=None):
    """Node status changes after `since`: (seconds after it, node, old, new, reason)."""
    query = {"kind": "node.status_changed", "since": since.isoformat()}
    if node:
        query["node"] = node
    events = api(stack, "GET", "/api/events/?" + urllib.parse.urlencode(query))
    events = events["results"] if isinstance(events, dict) else events
    return [
        (
            round((datetime.fromisoformat(e["created_at"]) - since).total_seconds(), 3),
            e["node"],
            e["old"],
            e["new"],
            e["reason"][:120],
        )
        for e in reversed(events)
    ]
