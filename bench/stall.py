"""Stalls: an engine that is slow but alive must not be marked down, nor its replicas moved.

A healthy 9-replica service ("good") spread 3/3/3, then, per run:
  registry stall  a second service ("stalled", 3 replicas) whose image lives on a registry
                  that accepts connections and never answers (a socket on the lab bridge):
                  every engine's pulls hang while it answers pings. Watched STALL_S seconds;
  API stall       a node's containerd frozen (SIGSTOP) for STALL_S seconds: its dockerd
                  answers `/_ping` and lists containers, but `/info`, creates and stops hang;
  short freeze    a node's dockerd frozen (SIGSTOP) for SHORT_FREEZE_S seconds, less than
                  FLEET_NODE_DOWN_AFTER's default of 10 s, then thawed and watched AFTER_S more.
The node is lab-3 or lab-2 in turn, whichever holds more of "good".
Meanwhile the bench pings every engine (`/_ping`, 1 s timeout) and times `GET /info`, to show
how real each stall was and that the engines stayed alive. Counted: nodes marked down (false
in every case; in the two stalls `unreachable` is false too, as the engines answered pings)
and containers of "good" created after the fault began (each one a replica moved or
replaced). Aim: 0 of each.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from bench import faults
from bench.fleetview import pick_victim, start_spread, status_events, wait_ready
from bench.harness import api, remove_service, row

GOOD, STALLED = "good", "stalled"
GOOD_REPLICAS, STALLED_REPLICAS = 9, 3
STALL_S = 30
SHORT_FREEZE_S = 5
AFTER_S = 15
VICTIMS = ["lab-3", "lab-2"]


def container_ids(clients, service):
    """Ids of every container of the service on the engines, any state."""
    ids = set()
    for client in clients.values():
        found = client.api.containers(all=True, filters={"label": f"fleet.service={service}"})
        ids |= {c["Id"] for c in found}
    return ids


def probe_engines(nodes, until):
    """Until `until`: ping every engine twice a second and time its `/info` over and over, each
    in a loop of its own (a hanging `/info` must not space out the pings); per node: pings
    sent, pings failed, slowest ping, slowest `/info` (seconds; 10 is its timeout)."""
    stats = {n["name"]: {"pings": 0, "failed": 0, "ping_max": 0, "info_max": 0} for n in nodes}

    def pinger(node):
        seen = stats[node["name"]]
        while time.monotonic() < until:
            started = time.monotonic()
            ping_s, status = faults.engine_get(node, "/_ping", 1.0)
            seen["pings"] += 1
            seen["failed"] += status != 200
            seen["ping_max"] = max(seen["ping_max"], ping_s)
            time.sleep(max(0, 0.5 - (time.monotonic() - started)))

    def informer(node):
        seen = stats[node["name"]]
        while time.monotonic() < until:
            info_s = faults.engine_get(node, "/info", 10)[0]
            seen["info_max"] = max(seen["info_max"], info_s)
            time.sleep(0.5)

    with ThreadPoolExecutor(len(nodes) * 2) as pool:
        for node in nodes:
            pool.submit(pinger, node)
            pool.submit(informer, node)
    return stats


def outcome(stack, clients, since, before, counted):
    events = status_events(stack, since)
    return {
        "false_downs": sum(1 for e in events if e[3] in counted),
        "moves": len(container_ids(clients, GOOD) - before),
        "node_events": events,
    }


def registry_stall(stack, clients, victim):
    before = container_ids(clients, GOOD)
    since = datetime.now(UTC)
    with faults.SilentRegistry() as registry:
        spec = {
            "name": STALLED,
            "image": registry.image(),
            "replicas": STALLED_REPLICAS,
            "update": {"monitor": 0},
        }
        api(stack, "POST", "/api/services/", spec)
        probes = probe_engines(stack.lab["nodes"], time.monotonic() + STALL_S)
        result = outcome(stack, clients, since, before, ("unreachable", "down"))
        result["held_connections"] = len(registry.held)
        remove_service(stack, STALLED)
    result["engines"] = probes
    return result


def api_stall(stack, clients, victim):
    before = container_ids(clients, GOOD)
    since = datetime.now(UTC)
    faults.apply("stall", victim)
    try:
        probes = probe_engines(stack.lab["nodes"], time.monotonic() + STALL_S)
    finally:
        faults.heal("stall", victim)
    time.sleep(AFTER_S)
    result = outcome(stack, clients, since, before, ("unreachable", "down"))
    result["engines"] = probes
    return result


def short_freeze(stack, clients, victim):
    before = container_ids(clients, GOOD)
    since = datetime.now(UTC)
    faults.apply("freeze", victim)
    try:
        time.sleep(SHORT_FREEZE_S)
    finally:
        faults.heal("freeze", victim)
    time.sleep(AFTER_S)
    return outcome(stack, clients, since, before, ("down",))


SCENARIOS = {
    "registry_stall": (
        registry_stall,
        f"registry stall: pulls hang on a silent registry {STALL_S} s",
        "unreachable or down",
    ),
    "api_stall": (
        api_stall,
        f"API stall: a node's containerd frozen {STALL_S} s, pings answered",
        "unreachable or down",
    ),
    "short_freeze": (
        short_freeze,
        f"short freeze: a node's dockerd SIGSTOP {SHORT_FREEZE_S} s",
        "down",
    ),
}


def measure(stack, clients, runs):
    details = {key: [] for key in SCENARIOS}
    details |= {"stall_s": STALL_S, "short_freeze_s": SHORT_FREEZE_S, "after_s": AFTER_S}
    for n in range(runs):
        wait_ready(stack, list(clients))
        spread = start_spread(stack, GOOD, GOOD_REPLICAS, stack.lab["images"]["demo_v1"])
        victim = pick_victim(spread, VICTIMS, n)
        try:
            for key, (scenario, _, _) in SCENARIOS.items():
                wait_ready(stack, list(clients))
                result = scenario(stack, clients, victim)
                details[key].append({"victim": victim, "spread": spread, **result})
        finally:
            faults.heal_all(list(clients))
            remove_service(stack, GOOD)
    return details


def rows(details, runs):
    result = []
    for key, (_, what, counted) in SCENARIOS.items():
        found = details[key]
        downs = sum(r["false_downs"] for r in found)
        moves = sum(r["moves"] for r in found)
        result.append(
            row(
                "node loss",
                f"{what}: false downs ({counted}), total of {runs} runs",
                str(downs),
                aim="0",
                met=downs == 0,
            )
        )
        result.append(
            row(
                "node loss",
                f"{what}: replicas of the healthy service moved, total of {runs} runs",
                str(moves),
                aim="0",
                met=moves == 0,
            )
        )
    return result
