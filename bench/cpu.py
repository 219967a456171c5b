"""CPU seconds of Fleet's processes and of the engines over part of a benchmark, read from /proc.

A process's CPU is its own user and system time plus that of its descendants now alive
(an engine is its dockerd with the containerd and shims it started). The web server,
worker, beat and watch are the bench stack's processes, found by the role they were
started as; a benchmark that restarts them (reconfigure) is not measured this way.
"""

import os
import time
from pathlib import Path

from bench.harness import descendants, row

TICKS = os.sysconf("SC_CLK_TCK")
ROLES = ("web", "worker", "alerts", "beat", "watch")


def cpu_seconds(pid):
    """CPU time (user + system) of a process and all its descendants now alive, seconds."""
    total = 0
    for current in descendants(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def pids(stack):
    """{name: pid} of Fleet's processes and of every engine."""
    found = {role: stack.pids[role] for role in ROLES if role in stack.pids}
    return {**found, **{n["name"]: n["pid"] for n in stack.lab["nodes"]}}


class Meter:
    """CPU used between start() and stop(), per process; `fleet` and `engines` sum them."""

    def __init__(self, stack):
        self.stack = stack
        self.used, self.wall = {}, 0.0

    def start(self):
        self.pids = pids(self.stack)
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.started = time.monotonic()
        return self

    def stop(self):
        self.wall += time.monotonic() - self.started
        for name, pid in self.pids.items():
            spent = cpu_seconds(pid) - self.before[name]
            self.used[name] = self.used.get(name, 0.0) + spent
        return self

    @property
    def fleet(self):
        return sum(v for k, v in self.used.items() if k in ROLES)

    @property
    def engines(self):
        return sum(v for k, v in self.used.items() if k not in ROLES)

    def details(self):
        return {
            "wall_seconds": round(self.wall, 2),
            "cpu_seconds": {k: round(v, 2) for k, v in self.used.items()},
        }

    def rows(self, benchmark, during):
        """The table's CPU line: each Fleet process and the engines, in CPU seconds."""
        each = ", ".join(f"{k} {self.used.get(k, 0):.1f}" for k in ROLES)
        return [
            row(
                benchmark,
                f"CPU seconds during {during} ({self.wall:.0f} s wall): {each}",
                f"{self.fleet:.1f} s Fleet",
                f"{self.engines:.1f} s engines",
            )
        ]
