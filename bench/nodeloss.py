"""Node loss: SIGKILL the dockerd of a node holding a third of a service -> 9 running elsewhere.

A 9-replica service spread 3/3/3 over the lab's engines; the dockerd of lab-3
is killed (SIGKILL, through the lab, which knows each engine's pid) and the
clock runs until the two surviving engines run 9 containers of the service
between them (counted on the engines; Fleet's API view and the moment Fleet
marks the node down are noted too). Then the engine is started again
(`manage.py lab up`) and the service removed. The same with Docker Swarm over
the same engines: manager on lab-1, workers lab-2 and lab-3, kill lab-3's
dockerd, time until the survivors run 9 tasks' containers. Aim: Fleet < 8 s.

    python -m bench.nodeloss [--runs 3]
"""

import argparse
import time
import urllib.parse
from collections import Counter
from datetime import UTC, datetime

from bench import swarm
from bench.harness import (
    ENV,
    api,
    engines,
    fmt_ratio,
    median,
    remove_service,
    row,
    standalone,
    wait_for,
    watch,
)

AIM_S = 8
REPLICAS = 9
SERVICE = "loss"
VICTIM = "lab-3"


def lab():
    from fleet.lab import Lab

    return Lab(ENV["FLEET_LAB_NAME"], ENV["FLEET_LAB_SUBNET"])


def running_on(clients, names, filters):
    total = 0
    for name in names:
        total += len(clients[name].api.containers(filters={**filters, "status": "running"}))
    return total


def restart_victim(stack):
    stack.manage("lab", "up", "--nodes", str(len(stack.lab["nodes"])))
    wait_for(
        lambda: api(stack, "GET", f"/api/nodes/{VICTIM}/")["status"] == "ready",
        60,
        f"{VICTIM} to be ready again in Fleet",
        0.2,
    )


def fleet_run(stack, clients):
    image = stack.lab["images"]["demo_v1"]
    spec = {"name": SERVICE, "image": image, "replicas": REPLICAS, "update": {"monitor": 0}}
    api(stack, "POST", "/api/services/", spec)
    path = f"/api/services/{SERVICE}/replicas/"

    def spread():
        rows = api(stack, "GET", path)
        return Counter(r["node"] for r in rows if r["state"] == "running")

    wait_for(lambda: sum(spread().values()) == REPLICAS, 120, "the service to run", 0.2)
    before = dict(spread())
    assert before.get(VICTIM) == REPLICAS // 3, f"not spread 3/3/3: {before}"
    survivors = [name for name in clients if name != VICTIM]
    label = {"label": f"fleet.service={SERVICE}"}
    killed_at, started = datetime.now(UTC), time.perf_counter()
    lab().kill_node(VICTIM)
    checks = {
        "engines": lambda: running_on(clients, survivors, label) >= REPLICAS,
        "api": lambda: sum(n for node, n in spread().items() if node != VICTIM) >= REPLICAS,
        "node_down": lambda: api(stack, "GET", f"/api/nodes/{VICTIM}/")["status"] == "down",
    }
    marks = watch(checks, started)
    after = dict(spread())
    events = node_events(stack, killed_at)
    restart_victim(stack)
    remove_service(stack, SERVICE)
    if "engines" not in marks:
        raise TimeoutError(f"Fleet did not restore {REPLICAS} replicas in 120 s: {after}")
    return {
        "seconds": round(marks["engines"], 3),
        "marks": marks,
        "before": before,
        "after": after,
        "node_events": events,
    }


def node_events(stack, since):
    """The victim's status changes after the kill: (seconds after it, old, new, reason)."""
    query = f"?node={VICTIM}&kind=node.status_changed&since={since.isoformat()}"
    body = api(stack, "GET", "/api/events/" + urllib.parse.quote(query, safe="?=&"))
    events = body["results"] if isinstance(body, dict) else body
    return [
        (
            round((datetime.fromisoformat(e["created_at"]) - since).total_seconds(), 3),
            e["old"],
            e["new"],
            e["reason"][:120],
        )
        for e in reversed(events)
    ]


def swarm_run(stack, clients, boss, ids, n):
    name = f"bench-loss-{n}"
    swarm.create(boss, name, stack.lab["images"]["demo_v1"], REPLICAS)
    wait_for(lambda: swarm.running_tasks(boss, name) == REPLICAS, 120, "swarm's 9 tasks", 0.2)
    by_host = {host: swarm.spread(boss, name).get(node_id, 0) for host, node_id in ids.items()}
    assert by_host[VICTIM] == REPLICAS // 3, f"not spread 3/3/3: {by_host}"
    survivors = [host for host in clients if host != VICTIM]
    label = {"label": f"{swarm.SERVICE_LABEL}={name}"}
    started = time.perf_counter()
    lab().kill_node(VICTIM)
    survivor_ids = {ids[h] for h in survivors}
    checks = {
        "engines": lambda: running_on(clients, survivors, label) >= REPLICAS,
        "tasks": lambda: swarm.running_tasks(boss, name, survivor_ids) >= REPLICAS,
    }
    marks = watch(checks, started)
    restart_victim(stack)
    wait_for(lambda: swarm.ready_nodes(boss, len(clients)), 60, "the swarm to be whole", 0.2)
    swarm.remove(boss, clients, name)
    if "engines" not in marks:
        raise TimeoutError(f"swarm did not restore {REPLICAS} tasks in 120 s")
    return {"seconds": round(marks["engines"], 3), "marks": marks, "before": by_host}


def measure(stack, runs=3):
    clients = engines(stack)
    names = sorted(clients)
    assert VICTIM in names and names[0] != VICTIM
    details = {"replicas": REPLICAS, "victim": VICTIM, "runs": runs, "fleet": [], "swarm": []}
    for _ in range(runs):
        details["fleet"].append(fleet_run(stack, clients))
    try:
        ids = swarm.form(clients, names[0])
        boss = clients[names[0]]
        for n in range(runs):
            details["swarm"].append(swarm_run(stack, clients, boss, ids, n))
    finally:
        swarm.leave(engines(stack))
    fleet = median([r["seconds"] for r in details["fleet"]])
    reference = median([r["seconds"] for r in details["swarm"]])
    down = median([r["marks"]["node_down"] for r in details["fleet"]])
    details["median_seconds"] = {"fleet": fleet, "swarm": reference, "fleet_node_down": down}
    rows = [
        row(
            "node loss",
            f"dockerd SIGKILL -> {REPLICAS} running on survivors, median of {runs}",
            f"{fleet:.2f} s",
            f"{reference:.2f} s swarm",
            fmt_ratio(fleet, reference),
            f"< {AIM_S} s",
            fleet < AIM_S,
        ),
        row("node loss", "of which: kill -> Fleet marks the node down", f"{down:.2f} s"),
    ]
    return rows, details


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    standalone("node loss", measure, runs=parser.parse_args().runs)
