"""Node health checks: every node probed in parallel, each with its own short timeout.

A check of one node never waits for another, so a frozen engine costs only its
own timeout. Results are stored as they arrive, each in its own transaction.
"""

import logging
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import engine, live, queue
from .models import Event, EventKind, Node, next_status
from .threads import close_thread_connections

log = logging.getLogger(__name__)


def check_node(node_id):
    """Probe one node and record the outcome; return its status, or None if it is gone."""
    node = Node.objects.filter(pk=node_id).first()
    if node is None:
        return None
    try:
        info = engine.probe(node, settings.FLEET_NODE_CHECK_TIMEOUT)
    except engine.EngineError as exc:
        return record_check(node_id, error=str(exc))
    return record_check(node_id, info=info)


@transaction.atomic
def record_check(node_id, info=None, error=""):
    """Store one check's outcome on the node and write an Event if its status changed."""
    node = Node.objects.select_for_update().filter(pk=node_id).first()
    if node is None:
        return None
    old = node.status
    shown = (node.status, node.containers_running, node.engine_version, node.last_error)
    if info is not None:
        node.failures = 0
        node.last_seen_at = timezone.now()
        node.last_error = ""
        node.engine_version = info.engine_version
        node.cpus = info.cpus
        node.memory_bytes = info.memory_bytes
        node.containers_running = info.containers_running
    else:
        node.failures += 1
        node.last_error = error[:1000]
    node.status = next_status(old, node.failures, settings.FLEET_NODE_DOWN_AFTER)
    node.save()
    if shown != (node.status, node.containers_running, node.engine_version, node.last_error):
        live.broadcast("node", node.name)
    if node.status != old:
        Event.objects.record(
            EventKind.NODE_STATUS_CHANGED,
            node=node,
            old=old,
            new=node.status,
            reason=error or f"engine {node.engine_version} answered",
        )
        # Move replicas off a node that went down; clear stale containers off one that came back.
        if node.status == Node.Status.DOWN:
            queue.move_off(node.pk)
        elif node.status == Node.Status.READY:
            queue.reconcile()
    return node.status


@close_thread_connections
def _check_in_thread(node_id):
    try:
        return check_node(node_id)
    except Exception:  # one node's bug must not stop the others' checks
        log.exception("check of node %s failed", node_id)
        return None


def check_all_nodes():
    """Check every node at once; return {node id: status}."""
    ids = list(Node.objects.values_list("pk", flat=True))
    if not ids:
        return {}
    workers = min(len(ids), settings.FLEET_NODE_CHECK_THREADS)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="node-check") as pool:
        return dict(zip(ids, pool.map(_check_in_thread, ids), strict=True))
