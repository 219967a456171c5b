"""Node loss with Docker Swarm over the bench's engines: the reference for bench/nodeloss.py.

Manager on lab-1, workers lab-2 and lab-3; the same 9-replica service and the same faults of
lab-3 as Fleet gets. At Swarm's defaults (5 s dispatcher heartbeat, 5 s restart delay), then
tuned (`docker swarm update --dispatcher-heartbeat 1s`, services created with
`--restart-delay 0s`). The swarm is formed for these runs and left afterwards, with every
container it made removed, so that Fleet's runs never share the engines with a swarm.
"""

import time

from bench import faults, swarm
from bench.harness import engines, wait_for, watch

REPLICAS = 9
VICTIM = "lab-3"
LIMIT_S = 90
TUNED_HEARTBEAT_S = 1


def running_on(clients, names, filters):
    return sum(
        len(clients[name].api.containers(filters={**filters, "status": "running"}))
        for name in names
    )


def swarm_run(clients, boss, ids, kind, n, restart_delay, images):
    name = f"bench-loss-{kind}-{n}"
    swarm.create(boss, name, images["demo_v1"], REPLICAS, restart_delay)
    delay = swarm.restart_delay(boss, name)
    wait_for(lambda: swarm.running_tasks(boss, name) == REPLICAS, 120, "swarm's 9 tasks", 0.2)
    by_host = {host: swarm.spread(boss, name).get(node_id, 0) for host, node_id in ids.items()}
    assert by_host[VICTIM] == REPLICAS // 3, f"not spread 3/3/3: {by_host}"
    survivors = [host for host in clients if host != VICTIM]
    label = {"label": f"{swarm.SERVICE_LABEL}={name}"}
    started = time.perf_counter()
    faults.apply(kind, VICTIM)
    try:
        checks = {
            "engines": lambda: running_on(clients, survivors, label) >= REPLICAS,
            "tasks": lambda: (
                swarm.running_tasks(boss, name, {ids[h] for h in survivors}) >= REPLICAS
            ),
            "node_down": lambda: swarm.node_state(boss, ids[VICTIM]) == "down",
        }
        marks = watch(checks, started, timeout=LIMIT_S)
    finally:
        faults.heal(kind, VICTIM)
    wait_for(lambda: swarm.ready_nodes(boss, len(clients)), 90, "the swarm to be whole", 0.2)
    swarm.remove(boss, clients, name)
    if "engines" not in marks:
        raise TimeoutError(f"swarm did not restore {REPLICAS} tasks in {LIMIT_S} s: {marks}")
    return {
        "seconds": marks["engines"],
        "marks": marks,
        "before": by_host,
        "restart_delay": delay,
    }


def measure(stack, clients, kinds, runs):
    """{"defaults": {kind: [run, ...]}, "tuned": {...}, "heartbeat": {...}}."""
    names = sorted(clients)
    images = stack.lab["images"]
    details = {"defaults": {}, "tuned": {}, "heartbeat_s": {}}
    assert_clean(clients)
    try:
        ids = swarm.form(clients, names[0])
        boss = clients[names[0]]
        for variant, heartbeat, delay in (
            ("defaults", swarm.DEFAULT_HEARTBEAT / swarm.SECOND, None),
            ("tuned", TUNED_HEARTBEAT_S, 0),
        ):
            details["heartbeat_s"][variant] = swarm.set_heartbeat(boss, heartbeat)
            for kind in kinds:
                details[variant][kind] = [
                    swarm_run(clients, boss, ids, kind, n, delay, images) for n in range(runs)
                ]
    finally:
        faults.heal_all(names)
        swarm.leave(engines(stack))
    assert_clean(engines(stack))
    return details


def assert_clean(clients):
    """No engine in a swarm, none holding a container of one or of Fleet's."""
    for name, client in clients.items():
        state = client.info()["Swarm"]["LocalNodeState"]
        left = client.api.containers(all=True, filters={"label": swarm.SERVICE_LABEL})
        left += client.api.containers(all=True, filters={"label": "fleet.service"})
        if state != "inactive" or left:
            raise RuntimeError(f"{name} not clean after the swarm: {state}, {len(left)} left")
