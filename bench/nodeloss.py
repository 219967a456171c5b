"""Node loss, three ways, Fleet beside Docker Swarm at its defaults and tuned; and two stalls.

A 9-replica service spread 3/3/3 over the lab's 3 engines; one node is lost one of three
ways (see bench/faults.py): for Fleet, lab-3 or lab-2 in turn, whichever holds more of the
service (a node that flapped may be held down and take none; each run records its spread);
for Swarm, lab-3.
  kill       its dockerd gets SIGKILL (connections close at once);
  partition  every packet into and out of its netns is dropped (nothing is closed);
  freeze     its dockerd gets SIGSTOP (connections stay open, nothing answers).
The clock runs from the fault until the two surviving engines run 9 containers of the
service between them (counted on the engines), and until the node is marked down (by Fleet;
for Swarm, by its manager). Then the fault is healed, the node comes back and the service is
removed. Fleet runs at its default settings, and once more with FLEET_NODE_DOWN_AFTER=3 for
kill and partition (that row says so). Swarm runs over the same engines (manager lab-1)
twice: at its defaults (5 s dispatcher heartbeat, 5 s restart delay) and tuned
(`--dispatcher-heartbeat 1s`, `--restart-delay 0s`). The swarm is left afterwards, so that
Fleet's runs never share the engines with one.

The stall scenarios (bench/stall.py) count false downs and replica moves where there should
be none. Aims: back at full count within 12 s of a kill or a partition at the defaults,
within 5 s with FLEET_NODE_DOWN_AFTER=3; zero false downs and zero moves in the stalls.

    python -m bench.nodeloss [--runs 3]    (about 5.5 minutes a run here, 17 in all for 3)
"""

import argparse
import time
from datetime import UTC, datetime

from bench import faults, nodeloss_swarm, stall
from bench.fleetview import (
    node_status,
    pick_victim,
    replica_spread,
    running_on,
    start_spread,
    status_events,
    wait_ready,
)
from bench.harness import (
    engines,
    fmt_ratio,
    median,
    remove_service,
    row,
    standalone,
    wait_for,
    watch,
)

AIM_S = 12
AIM_TUNED_S = 5
TUNED = {"FLEET_NODE_DOWN_AFTER": "3"}
REPLICAS = 9
SERVICE = "loss"
VICTIMS = ["lab-3", "lab-2"]  # lab-1 is Swarm's manager
LIMIT_S = 90  # a fault lasts at most this long


# Each run starts with no node held out of placement: the earlier runs' faults make the
# victims flap, and Fleet would (rightly, in a real fleet) stop giving them replicas.
LIFT_HOLDS = "from fleet.models import Node; Node.objects.update(held_until=None, hold_reason='')"


def fleet_run(stack, clients, kind, turn):
    """One loss of a node by `kind`; seconds to 9 running on the survivors, and more."""
    stack.manage("shell", "-c", LIFT_HOLDS)
    before = start_spread(stack, SERVICE, REPLICAS, stack.lab["images"]["demo_v1"])
    victim = pick_victim(before, VICTIMS, turn)
    if not before.get(victim):  # both held down by Fleet after flapping: nothing to lose
        remove_service(stack, SERVICE)
        return {"skipped": f"no replica on {' or '.join(VICTIMS)}", "before": before}
    survivors = [name for name in clients if name != victim]
    label = {"label": f"fleet.service={SERVICE}"}
    since, started = datetime.now(UTC), time.perf_counter()
    faults.apply(kind, victim)
    try:
        checks = {
            "engines": lambda: running_on(clients, survivors, label) >= REPLICAS,
            "api": lambda: (
                sum(n for node, n in replica_spread(stack, SERVICE).items() if node != victim)
                >= REPLICAS
            ),
            "noticed": lambda: node_status(stack, victim) != "ready",
            "node_down": lambda: node_status(stack, victim) == "down",
        }
        marks = watch(checks, started, timeout=LIMIT_S)
        after = dict(replica_spread(stack, SERVICE))
    finally:
        faults.heal(kind, victim)
    healed = time.perf_counter()
    ready = wait_ready(stack, [victim])
    # Back to one container per replica: the victim's stale ones removed.
    wait_for(
        lambda: running_on(clients, list(clients), label) == REPLICAS,
        60,
        "the victim's stale containers to go",
        0.2,
    )
    clean = round(time.perf_counter() - healed, 3)
    events = status_events(stack, since, victim)
    remove_service(stack, SERVICE)
    if "engines" not in marks:
        raise TimeoutError(f"Fleet did not restore {REPLICAS} replicas in {LIMIT_S} s: {after}")
    return {
        "seconds": marks["engines"],
        "marks": marks,
        "victim": victim,
        "before": before,
        "after": after,
        "ready_after_heal": ready,
        "one_per_replica_after_heal": clean,
        "node_events": events,
    }


def fleet_runs(stack, clients, kinds, runs):
    wait_ready(stack, list(clients))
    return {kind: [fleet_run(stack, clients, kind, n) for n in range(runs)] for kind in kinds}


def measured(results):
    return [r for r in results if "skipped" not in r]


def mark(results, name):
    values = [r["marks"].get(name) for r in measured(results)]
    return median(values) if values and None not in values else None


def seconds(value):
    return "never" if value is None else f"{value:.2f} s"


def loss_rows(details):
    fleet, swarm = details["fleet"], details["swarm"]
    rows = []
    for kind in faults.KINDS:
        ours = mark(fleet[kind], "engines")
        ref, tuned = mark(swarm["defaults"][kind], "engines"), mark(swarm["tuned"][kind], "engines")
        aim = AIM_S if kind != "freeze" else None
        rows.append(
            row(
                "node loss",
                f"{kind}: fault -> {REPLICAS} running on the survivors (engines), "
                f"median of {len(measured(fleet[kind]))}",
                seconds(ours),
                f"swarm {seconds(ref)}, tuned {seconds(tuned)}",
                fmt_ratio(ours, ref) if ours and ref else "",
                f"< {aim} s" if aim else "",
                None if aim is None else ours is not None and ours < aim,
            )
        )
        rows.append(
            row(
                "node loss",
                f"{kind}: fault -> node marked down (Fleet; Swarm's manager)",
                seconds(mark(fleet[kind], "node_down")),
                f"swarm {seconds(mark(swarm['defaults'][kind], 'node_down'))}, "
                f"tuned {seconds(mark(swarm['tuned'][kind], 'node_down'))}",
            )
        )
    for kind, results in details["fleet_down_after_3"].items():
        ours = mark(results, "engines")
        rows.append(
            row(
                "node loss",
                f"{kind}, FLEET_NODE_DOWN_AFTER=3: fault -> {REPLICAS} running on the survivors"
                f" (node down at {seconds(mark(results, 'node_down'))})",
                seconds(ours),
                aim=f"< {AIM_TUNED_S} s",
                met=ours is not None and ours < AIM_TUNED_S,
            )
        )
    return rows


def measure(stack, runs=3):
    clients = engines(stack)
    names = sorted(clients)
    assert set(VICTIMS) <= set(names) and names[0] not in VICTIMS
    started = time.monotonic()
    details = {"replicas": REPLICAS, "runs": runs}
    try:
        details["fleet"] = fleet_runs(stack, clients, faults.KINDS, runs)
        details["stall"] = stall.measure(stack, clients, runs)
        stack.reconfigure(**TUNED)
        details["fleet_down_after_3"] = fleet_runs(stack, clients, ("kill", "partition"), runs)
    finally:
        stack.reconfigure()
        faults.heal_all(names)
    wait_ready(stack, names)
    details["swarm"] = nodeloss_swarm.measure(stack, clients, faults.KINDS, runs)
    details["seconds_total"] = round(time.monotonic() - started, 1)
    rows = loss_rows(details) + stall.rows(details["stall"], runs)
    return rows, details


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    standalone("node loss", measure, runs=parser.parse_args().runs)
