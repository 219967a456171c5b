"""Docker events of every node -> observed state.

`manage.py watch` keeps one events stream open per node, each in its own thread.
When a stream opens it resynchronises the node (a full check); when it breaks it
checks the node at once, so a dead engine is noticed in about a second rather
than at the next beat. Reconnects resume from the last event seen. Nodes added,
changed or removed are picked up by a rescan every few seconds.
"""

import logging
import threading
import time

from django.db import DatabaseError, close_old_connections, connections

from . import engine, health, observe, queue
from .models import EventKind, Node, Replica

# Events after which the replica's service needs work at once, not at the next reconcile.
HEAL_AFTER = {EventKind.REPLICA_DIED, EventKind.REPLICA_UNHEALTHY}

log = logging.getLogger(__name__)


def needs_healing(replica, kind):
    """Whether what was just seen of a replica calls for its service's converge now."""
    return kind in HEAL_AFTER or replica.state == Replica.State.MISSING


RECONNECT_DELAY = 1.0
REFRESH_DELAY = 0.3  # container events come in bursts: refresh once per burst


class NodeWatch(threading.Thread):
    """One node's events stream, reopened until the watch is stopped."""

    def __init__(self, node):
        super().__init__(name=f"watch-{node.name}", daemon=True)
        self.node = node
        self.stopping = threading.Event()
        self.stream = None
        self.since = None
        self.refresh_timer = None
        self.lock = threading.Lock()

    def stop(self):
        self.stopping.set()
        stream = self.stream
        if stream is not None:
            stream.close()

    def run(self):
        try:
            while not self.stopping.is_set():
                self.follow()
                if self.stopping.is_set():
                    break
                # The stream ended or could not open: is the engine gone?
                self.check()
                self.stopping.wait(RECONNECT_DELAY)
        finally:
            connections.close_all()

    def follow(self):
        try:
            self.stream = engine.events(self.node, since=self.since)
        except engine.EngineError as exc:
            log.info("events of %s unavailable: %s", self.node.name, exc)
            return
        log.info("following events of %s", self.node.name)
        self.resync()  # whatever happened while the stream was closed
        try:
            for event in self.stream:
                self.since = _timestamp(event) or self.since
                self.handle(event)
                self.schedule_refresh()
        except Exception:  # a garbled event must not end the watch of this node
            log.exception("events stream of %s failed", self.node.name)
        finally:
            self.stream = None

    def resync(self):
        self.check()
        try:
            seen = observe.sync_node(self.node)
        except engine.EngineError as exc:
            log.info("cannot resync %s: %s", self.node.name, exc)
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

    def schedule_refresh(self):
        with self.lock:
            if self.refresh_timer is None or not self.refresh_timer.is_alive():
                self.refresh_timer = threading.Timer(REFRESH_DELAY, self.check)
                self.refresh_timer.daemon = True
                self.refresh_timer.start()

    def check(self):
        close_old_connections()
        try:
            health.check_node(self.node.pk)
        except Exception:
            log.exception("check of %s failed", self.node.name)
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
    return (node.endpoint, node.tls_ca, node.tls_cert, node.tls_key)


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
