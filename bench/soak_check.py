"""The soak's once-a-second look at the engines and at Fleet, run in a thread of its own.

Each look lists the running Fleet containers on every engine (in parallel, a short timeout
each: a lost engine shows as not visible) and reads Fleet's nodes and services through its
API. It publishes the latest look (`Checker.latest`) for the fault loop, and counts:

  duplicate slots  a service and slot with two running containers. Two cases are explained
                   and counted apart: different revisions while the service rolls out
                   (start-first runs the new container before the old one goes, by design),
                   and a container on a node healed less than HEAL_GRACE_S ago (stale, from
                   before the fault, until Fleet removes it). Any other is a violation;
  false downs      a node Fleet shows `down` (or, counted apart, `unreachable`) while its
                   engine answers `/_ping` over TCP, unless a fault that silences it is on
                   it or was healed less than HEAL_GRACE_S ago. A stall does not excuse: the
                   stalled engine answers pings, and that is the point.
"""

import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

from bench import faults
from bench.harness import api, engines

HEAL_GRACE_S = 10
LIST_TIMEOUT_S = 2
SERVICE, SLOT, REVISION = "fleet.service", "fleet.slot", "fleet.revision"


class Checker:
    """Looks once a second until stopped; see the module docstring."""

    def __init__(self, stack, services, started):
        self.stack, self.services, self.started = stack, services, started
        self.nodes = {n["name"]: n for n in stack.lab["nodes"]}
        self.clients = engines(stack, timeout=LIST_TIMEOUT_S)
        self.silenced = {}  # node -> fault kind while a fault silences it
        self.healed_at = {}  # node -> monotonic time its last fault was healed
        self.latest = None
        self.missed = None  # the last look that failed a wait of the fault loop
        self.looks = 0
        self.counts = Counter()
        self.violations = []
        self.notes = []
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(len(self.nodes) * 2, thread_name_prefix="soak-look")
        self.thread = threading.Thread(target=self.run, daemon=True)

    def elapsed(self):
        return round(time.monotonic() - self.started, 1)

    def excused(self, node, now):
        recent = now - self.healed_at.get(node, -HEAL_GRACE_S - 1) < HEAL_GRACE_S
        return node in self.silenced or recent

    def listing(self, name):
        try:
            return self.clients[name].api.containers(
                filters={"label": SERVICE, "status": "running"}
            )
        except Exception:  # refused, timed out, frozen: not visible this time
            return None

    def look(self):
        now = time.monotonic()
        # Rollouts read before and after the listings: one that ended (or began) meanwhile
        # still explains an overlap the listings caught.
        rolling = self.rolling()
        listings = dict(zip(self.nodes, self.pool.map(self.listing, self.nodes), strict=True))
        rolling |= self.rolling()
        statuses = {n["name"]: n["status"] for n in api(self.stack, "GET", "/api/nodes/")}
        slots = defaultdict(list)  # (service, slot) -> [(node, revision, container id)]
        for node, found in listings.items():
            for c in found or ():
                labels = c["Labels"]
                slots[labels[SERVICE], labels.get(SLOT)].append(
                    (node, labels.get(REVISION), c["Id"][:12])
                )
        serving = {
            name: len({slot for (svc, slot) in slots if svc == name}) for name in self.services
        }
        full = {name: serving[name] >= replicas for name, replicas in self.services.items()}
        self.latest = {
            "at": now,
            "visible": {n for n, found in listings.items() if found is not None},
            "ids": {
                n: {c["Id"][:12] for c in found}
                for n, found in listings.items()
                if found is not None
            },
            "full": full,
            "serving": serving,
            "duplicates": {k: v for k, v in slots.items() if len(v) > 1},
        }
        self.judge_slots(now, rolling)
        self.judge_nodes(now, statuses)
        self.looks += 1

    def rolling(self):
        """Names of the services with a rollout under way."""
        return {
            s["name"]
            for s in api(self.stack, "GET", "/api/services/", timeout=10)
            if (s.get("current_deployment") or {}).get("status") in ("pending", "running")
        }

    def judge_slots(self, now, rolling):
        for (service, slot), held in self.latest["duplicates"].items():
            if service in rolling and len({rev for _, rev, _ in held}) == len(held):
                self.counts["duplicate slot, rollout overlap"] += 1
            elif any(self.excused(node, now) for node, _, _ in held):
                self.counts["duplicate slot, stale on a healed node"] += 1
            else:
                self.counts["duplicate slot, violation"] += 1
                self.violation("duplicate slot", f"{service} slot {slot} on {held}")

    def judge_nodes(self, now, statuses):
        shown = {n: s for n, s in statuses.items() if s in ("down", "unreachable")}
        suspects = [n for n in shown if n in self.nodes and not self.excused(n, now)]
        answers = dict(zip(suspects, self.pool.map(self.pings, suspects), strict=True))
        for node, answered in answers.items():
            if answered:
                what = f"{shown[node]} while answering pings"
                self.counts[what] += 1
                if shown[node] == "down":
                    self.violation("false down", f"{node} {what}")

    def pings(self, name):
        return faults.pings(self.nodes[name])

    def violation(self, kind, detail):
        self.violations.append({"t": self.elapsed(), "kind": kind, "detail": detail})

    def run(self):
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                self.look()
            except Exception as exc:  # Fleet's API slow or failing: noted, the soak goes on
                self.counts["looks failed"] += 1
                self.notes.append({"t": self.elapsed(), "look failed": repr(exc)[:200]})
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - began)))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        self.pool.shutdown(wait=False, cancel_futures=True)

    def wait_look(self, after, timeout):
        """The first look begun after `after` (monotonic), or None after timeout seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.latest and self.latest["at"] >= after:
                return self.latest
            time.sleep(0.1)
        return None
