"""Run every benchmark against one bench stack, print one table, write bench/results.json.

    python -m bench [--runs 3] [--kills 60] [--clients 500] [--only scale,fan-out]
                    [--metrics-replicas 300] [--metrics-minutes 10]

Freshness, scale, fan-out and node loss share one Fleet stack (its own Redis,
lab "b", database, worker, beat, watch and web server, at Fleet's default
settings; BENCH_LAB_NAME, BENCH_LAB_SUBNET and BENCH_REDIS_URL move it), each
leaving it as it found it; the read path runs afterwards, in this process, on the
same database; then SSH (bench/ssh.py) on a stack of its own, two nodes, one behind
SSH. A benchmark that fails is reported as a failed row and the others
still run. Node loss, with its Swarm references and stalls, takes about 5.5
minutes a run (some 16 minutes for the default 3); rollout (Fleet's ingress and
Swarm behind HAProxy, under wrk) some 4 minutes; metrics some 15 minutes; SSH some 2.
"""

import argparse
import sys
import time
import traceback

from bench import fanout, freshness, metrics, nodeloss, readpath, rollout, scale, ssh
from bench.harness import (
    all_rows,
    fleet_stack,
    host_load,
    raise_fd_limit,
    record,
    reset_results,
    row,
    table,
)


def attempt(name, measure, *args, **options):
    print(f"-- {name} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        rows, details = measure(*args, **options)
    except Exception as exc:
        traceback.print_exc()
        rows, details = [row(name, f"FAILED: {exc}"[:120], "", met=False)], {"error": repr(exc)}
    details = {**details, "wall_seconds": round(time.monotonic() - started, 1)}
    details["load_average_after"] = host_load()
    record(name, rows, details)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of scale and node loss")
    parser.add_argument("--kills", type=int, default=60, help="kills for freshness")
    parser.add_argument("--clients", type=int, default=500, help="sockets for fan-out")
    parser.add_argument("--metrics-replicas", type=int, default=300, help="replicas sampled")
    parser.add_argument("--metrics-minutes", type=float, default=10.0, help="minutes sampled")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    options = parser.parse_args()
    wanted = set(filter(None, options.only.split(","))) or {
        "freshness",
        "scale",
        "fan-out",
        "node loss",
        "metrics",
        "rollout",
        "read path",
        "ssh",
    }
    raise_fd_limit()
    if not options.only:
        reset_results()  # a partial run replaces only its own benchmarks' entries
    on_stack = [
        ("freshness", freshness.measure, {"kills": options.kills}),
        ("scale", scale.measure, {"runs": options.runs}),
        ("fan-out", fanout.measure, {"clients": options.clients}),
        ("node loss", nodeloss.measure, {"runs": options.runs}),
        ("rollout", rollout.measure, {}),
        (
            "metrics",
            metrics.measure,
            {"replicas": options.metrics_replicas, "minutes": options.metrics_minutes},
        ),
    ]
    if wanted & {name for name, _, _ in on_stack}:
        with fleet_stack() as stack:
            for name, measure, kwargs in on_stack:
                if name in wanted:
                    attempt(name, measure, stack, **kwargs)
    if "read path" in wanted:
        attempt("read path", readpath.measure)
    if "ssh" in wanted:  # two nodes, one behind SSH: a stack of its own
        attempt("ssh", ssh.on_own_stack)
    print()
    table(all_rows())


if __name__ == "__main__":
    main()
