"""One node's sampler: a thread of `manage.py watch`, beside the node's events stream and prober.

Every FLEET_METRICS_INTERVAL seconds (rounds aligned to the clock, so every node's
samples of a round share a time) it reads the node's running replicas from the
database and asks the engine for each one's counters with a one-shot stats call.
The calls are spread over the first half of the interval, at most
FLEET_METRICS_CONCURRENCY in flight, each given FLEET_METRICS_TIMEOUT seconds: the
engine never gets a burst. A call that gets no answer ends the round (the rest
would wait as long), so a frozen or slow engine costs only its own samples, and it
never counts against liveness: that is the prober's ping alone. A node that does
not answer its pings is not sampled at all.

Each container's previous reading is kept in memory to turn counters into rates,
so the first round after a start writes nothing for a container. The engine's disk
use (GET /system/df, a walk of its layers) is asked for every DISK_EVERY rounds.
"""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections

from fleet import engine
from fleet.engine import stats as engine_stats
from fleet.metrics import readings, store

log = logging.getLogger(__name__)

DISK_EVERY = 30  # rounds: every 5 minutes at the default interval


class NodeSampler(threading.Thread):
    """Samples one node's replicas every interval until `stopping` is set."""

    def __init__(self, node, stopping, answering):
        super().__init__(name=f"metrics-{node.name}", daemon=True)
        self.node, self.stopping, self.answering = node, stopping, answering
        self.previous = {}  # container id -> (StatsReading, monotonic time)
        self.rounds = 0
        self.disk = None

    def run(self):
        interval = settings.FLEET_METRICS_INTERVAL
        # No more calls in flight than the client keeps connections for (see engine.POOL_SIZE).
        width = min(settings.FLEET_METRICS_CONCURRENCY, engine.POOL_SIZE)
        pool = ThreadPoolExecutor(width, thread_name_prefix=f"stats-{self.node.name}")
        try:
            while not self.stopping.is_set():
                start = readings.round_start(time.time(), interval) + interval
                if self.stopping.wait(max(0.0, start - time.time())):
                    break
                if not self.answering.is_set():
                    self.previous.clear()  # rates across a silence would be averages
                    continue
                try:
                    self.sample(start, pool)
                except DatabaseError:
                    connections.close_all()
                    log.warning("could not store metrics of %s", self.node.name, exc_info=True)
                except Exception:  # one bad round must not end the sampling of this node
                    log.exception("could not sample %s", self.node.name)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            connections.close_all()

    def sample(self, start, pool):
        """One round: stats of every running replica, then one bulk write and one push."""
        close_old_connections()
        replicas = store.running_replicas(self.node.pk)
        interval = settings.FLEET_METRICS_INTERVAL
        silent = threading.Event()
        offsets = readings.spread(len(replicas), interval)
        futures = [
            pool.submit(self.read, replica["container_id"], start + offset, silent)
            for replica, offset in zip(replicas, offsets, strict=True)
        ]
        deadline = start + interval * 0.9
        results = []
        for future in futures:
            try:
                results.append(future.result(timeout=max(0.0, deadline - time.time())))
            except Exception:  # late or failed: this round goes without it
                future.cancel()
                results.append(None)
        seen, rows = set(), []
        for replica, reading in zip(replicas, results, strict=True):
            if reading is None:
                continue
            current, at = reading
            seen.add(current.container_id)
            before = self.previous.get(current.container_id)
            use = before and readings.usage(before[0], current, at - before[1])
            self.previous[current.container_id] = (current, at)
            if use:
                rows.append((replica, use))
        # Containers gone since: their readings would only grow the map.
        self.previous = {k: v for k, v in self.previous.items() if k in seen}
        self.rounds += 1
        if self.rounds % DISK_EVERY == 1 and not silent.is_set():
            self.disk = self.disk_usage()
        store.write_round(
            self.node.pk, int(start), rows, disk=self.disk, complete=not silent.is_set()
        )

    def read(self, container_id, at, silent):
        """One container's counters, asked for at `at` (epoch seconds); None if not to be had."""
        wait = at - time.time()
        if wait > 0 and self.stopping.wait(wait):
            return None
        if silent.is_set() or self.stopping.is_set():
            return None  # the engine did not answer an earlier call of this round
        try:
            return engine_stats.stats(self.node, container_id, settings.FLEET_METRICS_TIMEOUT), (
                time.monotonic()
            )
        except engine.EngineUnreachable:
            silent.set()
        except engine.EngineError as exc:  # gone since the listing, most likely
            log.debug("no stats of %s on %s: %s", container_id[:12], self.node.name, exc)
        return None

    def disk_usage(self):
        try:
            return engine_stats.disk_usage(self.node, settings.FLEET_METRICS_TIMEOUT * 3)
        except engine.EngineError as exc:
            log.info("no disk use of %s: %s", self.node.name, exc)
            return self.disk
