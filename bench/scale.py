"""Scale: 0 -> 30 replicas over the lab's 3 engines until all run, Fleet against two references.

Per run, the same work three ways, cleaned up in between (no container left):
  Fleet:  POST /api/services/scale/scale {"replicas": 30} until the API reports 30 running
          (and healthy, were a health check set; this spec has none, as the references do);
  direct: create + start 30 containers by parallel Docker API calls (one thread each),
          spread round robin over the engines: the lower bound;
  swarm:  a Docker Swarm formed over the same engines, `service scale` 0 -> 30 until the
          manager reports 30 tasks running; formed after Fleet's runs and left afterwards.
Fleet and Swarm are asked how many run (every 50 ms) only once the engines' events streams
have reported 30 of their containers started: neither can report all 30 before that, and
asking all along would load the same 2 cores the engines start the containers on (a 50 ms
poll of Fleet's API slowed the direct calls' 30 starts by 0.4 s when it ran beside them),
a load that the direct calls, which need no asking, would not pay.
The image is on every engine beforehand, so no variant pays for a pull. Each run also
notes when the engines' events stream reported the first container created: Fleet's
fixed cost before any engine work shows as its first create coming later than direct's.

    python -m bench.scale [--runs 3]
"""

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench import swarm
from bench.cpu import Meter
from bench.harness import (
    api,
    count_containers,
    engines,
    fmt_ratio,
    median,
    remove_containers,
    remove_service,
    row,
    standalone,
    wait_for,
    watch,
)

REPLICAS = 30
SERVICE = "scale"
DIRECT_LABEL = "bench.direct"
POLL = 0.05
# Within 15% of the lower bound, and faster than Swarm.
DIRECT_AIM = 1.15
NAN = float("nan")  # a median of nothing seen


class Creates:
    """When the engines' events streams reported each container created and each one started
    (perf_counter; started ones with their labels): pushed to the bench, so knowing costs the
    engines no listing."""

    def __init__(self, clients):
        self.times, self.starts, self.streams = [], [], []
        self.changed = threading.Condition()
        for client in clients.values():
            for event in ("create", "start"):
                stream = client.events(decode=True, filters={"type": "container", "event": event})
                self.streams.append(stream)
                threading.Thread(target=self.read, args=(stream, event), daemon=True).start()

    def read(self, stream, event):
        try:
            for seen in stream:
                with self.changed:
                    if event == "create":
                        self.times.append(time.perf_counter())
                    else:
                        labels = seen.get("Actor", {}).get("Attributes", {})
                        self.starts.append((time.perf_counter(), labels))
                    self.changed.notify_all()
        except Exception:  # closed at the end
            return

    def first_after(self, started):
        later = [t for t in self.times if t >= started]
        return round(min(later) - started, 3) if later else None

    def wait_started(self, started, label, value, count, timeout=120):
        """Seconds from `started` until `count` containers labelled `label=value` have started
        since then; None if they have not within `timeout`."""

        def times():
            return sorted(
                t for t, labels in self.starts if t >= started and labels.get(label) == value
            )

        with self.changed:
            if self.changed.wait_for(lambda: len(times()) >= count, timeout):
                return round(times()[count - 1] - started, 3)
        return None

    def close(self):
        for stream in self.streams:
            stream.close()


def fleet_run(stack, clients, meter, creates):
    """Seconds until Fleet's API reports 30 running (and serving); also when the engines do."""

    def all_run():
        service = api(stack, "GET", f"/api/services/{SERVICE}/")
        return service["running_replicas"] == service["healthy_replicas"] == REPLICAS

    running = {"label": f"fleet.service={SERVICE}", "status": "running"}
    meter.start()
    started = time.perf_counter()
    api(stack, "POST", f"/api/services/{SERVICE}/scale", {"replicas": REPLICAS})
    # The API is asked only once the engines have started all 30 (see the module's doc).
    engines_ran = creates.wait_started(started, "fleet.service", SERVICE, REPLICAS)
    marks = watch({"api": all_run}, started, interval=POLL)
    if engines_ran is not None:
        marks["engines"] = engines_ran
    meter.stop()
    if "api" not in marks:
        raise TimeoutError(f"Fleet did not report {REPLICAS} running in 120 s: {marks}")
    elapsed = marks["api"]
    marks["first_create"] = creates.first_after(started)
    spread = count_containers(clients, running)
    assert sum(spread.values()) == REPLICAS, spread
    api(stack, "POST", f"/api/services/{SERVICE}/scale", {"replicas": 0})
    label = {"label": f"fleet.service={SERVICE}"}
    wait_for(
        lambda: (
            api(stack, "GET", f"/api/services/{SERVICE}/")["running_replicas"] == 0
            and not any(count_containers(clients, label).values())
        ),
        120,
        "Fleet to scale back to 0",
        0.25,
    )
    return elapsed, {"spread": spread, "marks": marks}


def direct_run(clients, image, meter, creates):
    names = sorted(clients)

    def one(i):
        client = clients[names[i % len(names)]].api
        created = client.create_container(
            image,
            name=f"bench-direct-{i}",
            labels={DIRECT_LABEL: "1"},
            host_config=client.create_host_config(restart_policy={"Name": "no"}),
        )
        client.start(created["Id"])

    meter.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=REPLICAS) as pool:
        list(pool.map(one, range(REPLICAS)))
    elapsed = time.perf_counter() - started
    meter.stop()
    spread = count_containers(clients, {"label": DIRECT_LABEL, "status": "running"})
    assert sum(spread.values()) == REPLICAS, spread
    remove_direct(clients)
    return elapsed, {"spread": spread, "first_create": creates.first_after(started)}


def remove_direct(clients):
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        list(pool.map(lambda c: remove_containers(c, {"label": DIRECT_LABEL}), clients.values()))


def swarm_run(boss, clients, image, n, creates):
    name = f"bench-scale-{n}"
    service = swarm.create(boss, name, image, 0)
    started = time.perf_counter()
    service.scale(REPLICAS)
    # The manager is asked only once the engines have started all 30 (see the module's doc).
    creates.wait_started(started, "com.docker.swarm.service.name", name, REPLICAS)
    wait_for(
        lambda: swarm.running_tasks(boss, name) == REPLICAS, 120, "swarm to run 30 tasks", POLL
    )
    elapsed = time.perf_counter() - started
    spread = swarm.spread(boss, name)
    swarm.remove(boss, clients, name)
    return elapsed, {"spread": spread, "first_create": creates.first_after(started)}


def measure(stack, runs=3):
    clients = engines(stack)
    image = stack.lab["images"]["demo_v1"]
    for client in clients.values():
        client.images.pull(image)
    remove_direct(clients)
    spec = {"name": SERVICE, "image": image, "replicas": 0, "update": {"monitor": 0}}
    api(stack, "POST", "/api/services/", spec)
    wait_for(
        lambda: api(stack, "GET", f"/api/services/{SERVICE}/")["status"] == "running",
        60,
        "the empty service to be deployed",
    )
    details = {"replicas": REPLICAS, "runs": runs, "fleet": [], "direct": [], "swarm": []}
    fleet_cpu, direct_cpu = Meter(stack), Meter(stack)
    creates = Creates(clients)
    for _ in range(runs):
        elapsed, seen = fleet_run(stack, clients, fleet_cpu, creates)
        details["fleet"].append({"seconds": round(elapsed, 3), **seen})
        elapsed, seen = direct_run(clients, image, direct_cpu, creates)
        details["direct"].append({"seconds": round(elapsed, 3), **seen})
    remove_service(stack, SERVICE)
    names = sorted(clients)
    try:
        swarm.form(clients, names[0])
        boss = clients[names[0]]
        for n in range(runs):
            elapsed, seen = swarm_run(boss, clients, image, n, creates)
            details["swarm"].append({"seconds": round(elapsed, 3), **seen})
    finally:
        swarm.leave(clients)
        creates.close()
    fleet, direct, swarm_s = (
        median([r["seconds"] for r in details[v]]) for v in ("fleet", "direct", "swarm")
    )
    engines_s = median([r["marks"].get("engines", float("inf")) for r in details["fleet"]])
    firsts = {
        v: median([r["first_create"] for r in details[v] if r.get("first_create")] or [NAN])
        for v in ("direct", "swarm")
    }
    fleet_firsts = [r["marks"].get("first_create") for r in details["fleet"]]
    firsts["fleet"] = median([f for f in fleet_firsts if f] or [NAN])
    details["cpu_fleet_runs"] = fleet_cpu.details()
    details["cpu_direct_runs"] = direct_cpu.details()
    started = REPLICAS * runs
    details["median_seconds"] = {
        "fleet": fleet,
        "fleet_engines_running": engines_s,
        "direct": direct,
        "swarm": swarm_s,
    }
    what = f"0 -> {REPLICAS} replicas on 3 engines, median of {runs}"
    rows = [
        row(
            "scale",
            f"{what}, vs direct API calls",
            f"{fleet:.2f} s",
            f"{direct:.2f} s direct",
            fmt_ratio(fleet, direct),
            f"<= {DIRECT_AIM}x",
            fleet <= DIRECT_AIM * direct,
        ),
        row(
            "scale",
            f"{what}, vs Docker Swarm",
            f"{fleet:.2f} s",
            f"{swarm_s:.2f} s swarm",
            fmt_ratio(fleet, swarm_s),
            "< 1x",
            fleet < swarm_s,
        ),
        row("scale", "of which: all 30 running on the engines", f"{engines_s:.2f} s"),
        row(
            "scale",
            "first container created (engines' events), median",
            f"{firsts['fleet']:.2f} s",
            f"{firsts['direct']:.2f} s direct, {firsts['swarm']:.2f} s swarm",
        ),
        *fleet_cpu.rows("scale", f"Fleet's {runs} scale-ups"),
        row(
            "scale",
            "CPU per replica started: Fleet's processes; engines (Fleet vs direct calls)",
            f"{fleet_cpu.fleet / started * 1000:.0f} ms",
            f"engines {fleet_cpu.engines / started * 1000:.0f} ms"
            f" vs {direct_cpu.engines / started * 1000:.0f} ms direct",
        ),
    ]
    return rows, details


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    standalone("scale", measure, runs=parser.parse_args().runs)
