"""Docker events of every node -> observed state, and every node's liveness.

`manage.py watch` keeps, per node, one events stream open in one thread, a
prober in another and a metrics sampler in a third (fleet/metrics/sampler.py).
The prober pings the node every FLEET_NODE_PING_INTERVAL (a
GET /_ping: cheap for the engine, and a database write only when something
changes), so it is the watch that finds a node unreachable within about a
second, probes it every second while it is, and marks it down once it has not
answered for FLEET_NODE_DOWN_AFTER (health.record_ping decides). A node that
stops answering also has its stream closed, since a silently dropped connection
would otherwise hang; the stream reopens once the node answers again, and each
opening resynchronises the node from a listing. Reconnects resume from the last
event seen. Nodes added, changed or removed are picked up by a rescan.
"""

import logging
import threading
import time
from collections import OrderedDict

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections

from fleet import engine, queue
from fleet.metrics.sampler import NodeSampler
from fleet.models import EventKind, Node, Replica
from fleet.nodes import health, observe

# Events after which the replica's service needs work at once, not at the next reconcile.
HEAL_AFTER = {EventKind.REPLICA_DIED, EventKind.REPLICA_UNHEALTHY}

log = logging.getLogger(__name__)


def needs_healing(replica, kind):
    """Whether what was just seen of a replica calls for its service's converge now."""
    return kind in HEAL_AFTER or replica.state == Replica.State.MISSING


RECONNECT_DELAY = 1.0
REFRESH_DELAY = 0.3  # container events come in bursts: refresh once per burst
GARBLED_KEPT = 256  # garbled events remembered per node, so that a replay is not news
SHORTEST_PING = 0.25  # seconds: a ping cut short by the down deadline still gets this long


class Bursts:
    """Run `action` once per burst of requests, `delay` after the burst's first.

    A request that comes while `action` runs gets a run of its own after it: the
    run may already have read what the request is about to change (a container
    created, then started while the engine's info was being read).
    """

    def __init__(self, action, delay, name):
        self.action, self.delay, self.name = action, delay, name
        self.lock = threading.Lock()
        self.wanted = False  # a request came since the last run began
        self.running = False  # a thread is waiting or running for the requests

    def request(self):
        with self.lock:
            self.wanted = True
            if self.running:
                return
            self.running = True
        threading.Thread(target=self.serve, name=self.name, daemon=True).start()

    def serve(self):
        while True:
            time.sleep(self.delay)
            with self.lock:
                if not self.wanted:
                    self.running = False
                    return
                self.wanted = False
            try:
                self.action()
            except Exception:
                log.exception("%s failed", self.name)


class NodeWatch(threading.Thread):
    """One node's events stream, reopened until the watch is stopped, and its prober."""

    def __init__(self, node):
        super().__init__(name=f"watch-{node.name}", daemon=True)
        self.node = node
        self.stopping = threading.Event()
        self.answering = threading.Event()  # set while the node answers its pings
        self.stream = None
        self.since = None
        self.refreshes = Bursts(self.refresh, REFRESH_DELAY, f"refresh-{node.name}")
        self.garbled = OrderedDict()  # keys of the garbled events already reported
        self.prober = threading.Thread(target=self.probe, name=f"ping-{node.name}", daemon=True)
        # Metrics are sampled here, beside the pings: a thread per node already, and a
        # frozen engine stalls only its own (fleet/metrics/sampler.py).
        self.sampler = NodeSampler(node, self.stopping, self.answering)

    def stop(self):
        self.stopping.set()
        self.close_stream()

    def close_stream(self):
        stream = self.stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # already closed, or half-open: either way it ends
                log.debug("closing the stream of %s", self.node.name, exc_info=True)

    def run(self):
        self.prober.start()
        self.sampler.start()
        try:
            while not self.stopping.is_set():
                # A node that does not answer its pings would only hang a new stream.
                if not self.answering.wait(RECONNECT_DELAY):
                    continue
                self.follow()
                self.stopping.wait(RECONNECT_DELAY)
        finally:
            self.prober.join(settings.FLEET_NODE_PING_TIMEOUT + 1)
            self.sampler.join(settings.FLEET_METRICS_TIMEOUT + 1)
            connections.close_all()

    def probe(self):
        """Ping the node every FLEET_NODE_PING_INTERVAL until stopped; record what changes."""
        since = None  # when the first of this run of unanswered pings was sent (epoch seconds)
        status, recorded = None, 0.0
        try:
            while not self.stopping.is_set():
                began = time.monotonic()
                timeout = settings.FLEET_NODE_PING_TIMEOUT
                if since is not None:
                    # The ping that reaches the down deadline ends at it, not a timeout later.
                    left = since + settings.FLEET_NODE_DOWN_AFTER - time.time()
                    timeout = min(timeout, max(SHORTEST_PING, left))
                sent, error = health.ping(self.node, timeout)
                if error:
                    since = since or sent.timestamp()
                    self.answering.clear()
                    self.close_stream()  # silently dropped, it would hang: reopen it later
                    status = self.record(sent, error) or status
                    # The row's clock wins: it restarts when a fleet-wide silence ends.
                    since = self.silent_since() or since
                else:
                    since = None
                    # An answer is written only when it changes something, or now and
                    # then so that beat's view and "last seen" stay current.
                    stale = began - recorded >= settings.FLEET_NODE_CHECK_INTERVAL
                    if status != Node.Status.READY or stale:
                        status = self.record(sent, "") or status
                        recorded = began
                    self.answering.set()
                self.stopping.wait(
                    max(0.0, settings.FLEET_NODE_PING_INTERVAL - (time.monotonic() - began))
                )
        finally:
            connections.close_all()

    def silent_since(self):
        """When the row says this node's silence began (epoch seconds), or None."""
        try:
            since = (
                Node.objects.filter(pk=self.node.pk)
                .values_list("unreachable_since", flat=True)
                .first()
            )
        except DatabaseError:
            connections.close_all()
            return None
        return since.timestamp() if since else None

    def record(self, sent, error):
        close_old_connections()
        try:
            return health.record_ping(self.node.pk, sent, error)
        except DatabaseError:
            connections.close_all()  # a restarted database: the next ping tries a new one
            log.warning("could not record a ping of %s", self.node.name, exc_info=True)
        except Exception:
            log.exception("could not record a ping of %s", self.node.name)
        return None

    def follow(self):
        try:
            self.stream = engine.events(self.node, since=self.since)
        except engine.EngineError as exc:
            log.info("events of %s unavailable: %s", self.node.name, exc)
            return
        log.info("following events of %s", self.node.name)
        if not self.answering.is_set():
            self.close_stream()  # the prober found it silent while it opened
        self.resync()  # whatever happened while the stream was closed
        try:
            for event in self.stream:
                if isinstance(event, engine.GarbledEvent):
                    self.skip(event)
                    continue
                self.since = _timestamp(event) or self.since
                self.handle(event)
                self.refreshes.request()
        except Exception:  # a garbled event must not end the watch of this node
            log.exception("events stream of %s failed", self.node.name)
        finally:
            self.stream = None
        log.info("events stream of %s ended", self.node.name)

    def skip(self, event):
        """A garbled event is reported once and never acted on, however often a
        reconnect brings it again."""
        if event.key in self.garbled:
            return
        self.garbled[event.key] = True
        if len(self.garbled) > GARBLED_KEPT:
            self.garbled.popitem(last=False)
        log.warning("skipped an event of %s: %s", self.node.name, event)

    def resync(self):
        self.refresh()
        try:
            seen = observe.sync_node(self.node)
        except engine.EngineError as exc:
            log.info("cannot resync %s: %s", self.node.name, exc)
            return
        except DatabaseError:
            connections.close_all()
            log.warning("cannot resync %s", self.node.name, exc_info=True)
            return
        # Deaths while the stream was closed (or the watch was down) heal as if seen live.
        for service_id in {r.service_id for r, kind in seen if needs_healing(r, kind)}:
            self.heal(service_id)

    def handle(self, event):
        """One container event -> its replica; a death or bad health starts its healing now."""
        try:
            try:
                outcome = observe.apply_event(self.node, event)
            except DatabaseError:
                # This thread's connection lives as long as the stream: after a database
                # restart it is broken. Drop it, and apply the event on a new one.
                connections.close_all()
                outcome = observe.apply_event(self.node, event)
        except Exception:  # one odd event must not end the watch
            log.exception("could not apply an event of %s", self.node.name)
            return
        if outcome and needs_healing(*outcome):
            self.heal(outcome[0].service_id)

    def heal(self, service_id):
        queue.converge(service_id)

    def refresh(self):
        """The engine's info (its running count) after a burst of events: never liveness."""
        close_old_connections()
        try:
            health.refresh_info(self.node)
        except Exception:
            log.exception("info of %s failed", self.node.name)
        finally:
            if threading.current_thread() is not self:
                connections.close_all()


def _timestamp(event):
    """The event's time in the `seconds.nanoseconds` form Docker accepts for `since`."""
    nanos = event.get("timeNano")
    if not nanos:
        return None
    return f"{nanos // 1_000_000_000}.{nanos % 1_000_000_000:09d}"


def _identity(node):
    """What a running watch depends on: a change to any of it means reconnecting."""
    return (
        node.endpoint,
        node.tls_ca,
        node.tls_cert,
        node.tls_key,
        node.ssh_key,
        node.ssh_host_key,
    )


def run(rescan=2.0, stop=None):
    """Keep one NodeWatch per node until `stop` is set."""
    stop = stop or threading.Event()
    watches = {}
    while not stop.is_set():
        close_old_connections()
        try:
            current = {node.pk: node for node in Node.objects.all()}
        except DatabaseError as exc:  # a database restart must not end the watch
            log.warning("cannot read the nodes (%s); trying again", exc)
            connections.close_all()
            stop.wait(rescan)
            continue
        for pk, watch in list(watches.items()):
            node = current.get(pk)
            if node is None or _identity(node) != _identity(watch.node):
                watch.stop()
                del watches[pk]
        for pk, node in current.items():
            if pk not in watches:
                watches[pk] = NodeWatch(node)
                watches[pk].start()
        stop.wait(rescan)
    for watch in watches.values():
        watch.stop()
    deadline = time.monotonic() + 5
    for watch in watches.values():
        watch.join(max(0.0, deadline - time.monotonic()))
