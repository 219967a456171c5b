"""Metrics: the cost of sampling 300 replicas every 10 s, and the 24 h chart's answer time.

On the bench stack (3 engines), 300 idle replicas (three services of 100, the most
one service may have) run through two windows:
  baseline: sampling off in effect (FLEET_METRICS_INTERVAL=86400: no round falls in
            the window), the watch following events and pinging as always;
  sampling: Fleet's defaults (a round every 10 s) for `minutes` minutes.
In each, the CPU time of Fleet's watch (which samples and stores), worker and beat,
and of every engine (dockerd with its containerd and shims), read from /proc. Fleet's
share is the watch's, worker's and beat's CPU in the sampling window less the
baseline's, per second of wall time, in percent of one core; an engine's extra CPU
likewise. Rows written per minute are counted in the database; its growth per day
is the sampling window's growth (SQLite's pages in use after a checkpoint, or
PostgreSQL's sizes of the metrics tables) scaled to a day. Then a 30-replica
service gets 24 h of samples written straight into the database (raw rows for
every 10 s and the 5-minute rollups, as 24 h of sampling leaves them), and
GET /api/services/{name}/metrics/ for the last 24 h (the chart's request) is timed.

    python -m bench.metrics [--replicas 300] [--minutes 10] [--baseline-minutes 2]
                            [--chart-replicas 30]
"""

import argparse
import json
import time

from bench.cpu import cpu_seconds
from bench.harness import (
    ENV,
    api,
    median,
    percentile,
    remove_service,
    row,
    standalone,
    wait_for,
)

NAME = "metrics"
PER_SERVICE = 100
CHART_SERVICE = "chart30"
CHART_REPLICAS = 30
CHART_REQUESTS = 20
BASELINE_MINUTES = 2


def fleet_pids(stack):
    """Watch, worker and beat: the processes that sample, store, roll up and prune."""
    return {role: stack.pids[role] for role in ("watch", "worker", "beat")}


def engine_pids(stack):
    return {n["name"]: n["pid"] for n in stack.lab["nodes"]}


def window(stack, seconds):
    """CPU seconds used by Fleet's processes and by each engine over `seconds` of wall time."""
    fleet, engines = fleet_pids(stack), engine_pids(stack)
    before = {k: cpu_seconds(p) for k, p in {**fleet, **engines}.items()}
    started = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - started
    used = {k: cpu_seconds(p) - before[k] for k, p in {**fleet, **engines}.items()}
    return wall, {k: used[k] for k in fleet}, {k: used[k] for k in engines}


DB_SCRIPT = """
import json, time
from django.db import connection
from fleet.models import ReplicaSample, NodeSample
since = {since}
out = {{"replica_rows": ReplicaSample.objects.filter(t__gte=since).count(),
        "node_rows": NodeSample.objects.filter(t__gte=since).count()}}
if connection.vendor == "postgresql":
    with connection.cursor() as c:
        c.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                  "WHERE c.relname LIKE 'fleet_%%sample%%' OR c.relname LIKE 'fleet_%%rollup%%'")
        out["bytes"] = int(c.fetchone()[0] or 0)
else:
    # Pages in use after a checkpoint: the WAL's size says when it was last reset, not growth.
    with connection.cursor() as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = []
        for pragma in ("page_count", "freelist_count", "page_size"):
            c.execute("PRAGMA " + pragma)
            pages.append(c.fetchone()[0])
    out["bytes"] = (pages[0] - pages[1]) * pages[2]
print(json.dumps(out))
"""

FILL_SCRIPT = """
import time
from fleet.models import ReplicaRollup, ReplicaSample, Service
service = Service.objects.get(name="{name}")
now = int(time.time()) // 10 * 10
made = [0, 0]
for slot in range(1, {replicas} + 1):  # a slot at a time: 8,640 rows in memory, not 259,200
    raw = [ReplicaSample(t=t, service=service, slot=slot, cpu=12.5, memory=50 << 20,
        memory_limit=1 << 30, net_rx=100.0, net_tx=50.0, blk_read=0.0, blk_write=0.0)
        for t in range(now - 86400, now, 10)]
    rollups = [ReplicaRollup(bucket=b, service=service, slot=slot, samples=30,
        cpu_min=10, cpu=12.5, cpu_max=15, memory_min=50 << 20, memory=50 << 20,
        memory_max=50 << 20, memory_limit=1 << 30, net_rx=100.0, net_tx=50.0,
        blk_read=0.0, blk_write=0.0) for b in range((now - 86400) // 300 * 300, now, 300)]
    ReplicaSample.objects.bulk_create(raw, batch_size=2000)
    ReplicaRollup.objects.bulk_create(rollups, batch_size=2000, ignore_conflicts=True)
    made[0] += len(raw)
    made[1] += len(rollups)
print(*made)
"""


def db_state(stack, since):
    out = stack.manage("shell", "-c", DB_SCRIPT.format(since=since))
    return json.loads(out.strip().splitlines()[-1])


def chart_times(stack, replicas=CHART_REPLICAS):
    """Seconds to answer the 24 h chart of a 30-replica service, CHART_REQUESTS times."""
    api(
        stack,
        "POST",
        "/api/services/",
        {"name": CHART_SERVICE, "image": image(stack), "replicas": 0},
    )
    stack.manage("shell", "-c", FILL_SCRIPT.format(name=CHART_SERVICE, replicas=replicas))
    times = []
    for _ in range(CHART_REQUESTS):
        now = int(time.time())
        started = time.perf_counter()
        body = api(
            stack, "GET", f"/api/services/{CHART_SERVICE}/metrics/?since={now - 86400}&until={now}"
        )
        times.append(time.perf_counter() - started)
        if len(body["replicas"]) != replicas:
            raise RuntimeError(f"the chart has {len(body['replicas'])} replicas, not {replicas}")
    return times, body["source"], body["step"]


def image(stack):
    return stack.lab["images"]["demo_v1"]


def services_for(replicas):
    counts, left = [], replicas
    while left > 0:
        counts.append(min(PER_SERVICE, left))
        left -= counts[-1]
    return {f"metrics-{i + 1}": n for i, n in enumerate(counts)}


def measure(
    stack,
    replicas=300,
    minutes=10.0,
    baseline_minutes=BASELINE_MINUTES,
    chart_replicas=CHART_REPLICAS,
):
    services = services_for(replicas)
    for name, count in services.items():
        api(
            stack,
            "POST",
            "/api/services/",
            {"name": name, "image": image(stack), "replicas": count},
        )

    def running():
        return sum(api(stack, "GET", f"/api/services/{n}/")["running_replicas"] for n in services)

    wait_for(lambda: running() == replicas, 300, f"{replicas} replicas running", 1.0)
    try:
        stack.reconfigure(FLEET_METRICS_INTERVAL="86400")
        time.sleep(15)  # the processes start up (Django's imports): not part of either window
        base_wall, base_fleet, base_engines = window(stack, baseline_minutes * 60)
        stack.reconfigure()
        time.sleep(25)  # two rounds: the first reading of each container writes nothing
        since = int(time.time())
        before = db_state(stack, since)
        wall, fleet, engines = window(stack, minutes * 60)
        after = db_state(stack, since)
        chart, source, step = chart_times(stack, chart_replicas)
    finally:
        stack.reconfigure()
        for name in [*services, CHART_SERVICE]:
            remove_service(stack, name)

    fleet_share = 100 * (sum(fleet.values()) / wall - sum(base_fleet.values()) / base_wall)
    extra = {n: 100 * (engines[n] / wall - base_engines[n] / base_wall) for n in engines}
    rows_per_minute = after["replica_rows"] / (wall / 60)
    growth_per_day = (after["bytes"] - before["bytes"]) / wall * 86400
    chart_median = median(chart)
    worst_engine = max(extra.values())
    label = f"{replicas} replicas at 10 s"
    rows = [
        row(
            NAME,
            f"Fleet CPU for sampling and storing, {label}",
            f"{fleet_share:.2f}% of a core",
            aim="< 5%",
            met=fleet_share < 5,
        ),
        row(
            NAME,
            f"engines' extra CPU against no sampling (worst of {len(extra)})",
            f"{worst_engine:.2f}% of a core",
            aim="< 2%",
            met=worst_engine < 2,
        ),
        row(NAME, "replica rows written per minute", f"{rows_per_minute:.0f}"),
        row(NAME, "database growth per day", f"{growth_per_day / 2**20:.0f} MiB"),
        row(
            NAME,
            f"24 h chart of a {chart_replicas}-replica service (API, median)",
            f"{chart_median * 1000:.0f} ms",
            aim="< 200 ms",
            met=chart_median < 0.2,
        ),
    ]
    details = {
        "replicas": replicas,
        "minutes": minutes,
        "baseline_seconds": round(base_wall, 1),
        "sampling_seconds": round(wall, 1),
        "fleet_cpu_seconds": {k: round(v, 2) for k, v in fleet.items()},
        "fleet_cpu_seconds_baseline": {k: round(v, 2) for k, v in base_fleet.items()},
        "engine_cpu_seconds": {k: round(v, 2) for k, v in engines.items()},
        "engine_cpu_seconds_baseline": {k: round(v, 2) for k, v in base_engines.items()},
        "engine_extra_percent": {k: round(v, 2) for k, v in extra.items()},
        "replica_rows": after["replica_rows"],
        "node_rows": after["node_rows"],
        "database_bytes": [before["bytes"], after["bytes"]],
        "database": ENV["DATABASE_URL"].split(":", 1)[0],
        "chart_seconds": [round(t, 4) for t in chart],
        "chart_p95_seconds": round(percentile(chart, 95), 4),
        "chart_source": source,
        "chart_step": step,
        "baseline_setting": "FLEET_METRICS_INTERVAL=86400 (no round within the baseline window)",
    }
    return rows, details


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=10.0, help="of sampling")
    parser.add_argument("--baseline-minutes", type=float, default=BASELINE_MINUTES)
    parser.add_argument("--chart-replicas", type=int, default=CHART_REPLICAS)
    options = parser.parse_args()
    standalone(
        NAME,
        measure,
        replicas=options.replicas,
        minutes=options.minutes,
        baseline_minutes=options.baseline_minutes,
        chart_replicas=options.chart_replicas,
    )


if __name__ == "__main__":
    main()
