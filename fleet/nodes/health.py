"""Node health: liveness from pings, metadata from `info`, and the damping of moves.

A node is alive iff it answers GET /_ping within FLEET_NODE_PING_TIMEOUT. Its
engine's version, size and container count come from `info`, asked separately
with the longer FLEET_NODE_CHECK_TIMEOUT: a slow or failing `info` (a daemon busy
with pulls) is logged and never counts against liveness.

A node that stops answering is `unreachable` at once (nothing moves) and `down`
once it has not answered for FLEET_NODE_DOWN_AFTER seconds; then its replicas
move. Two brakes hold moves back when Fleet's own view is the likelier fault:
when more than half of the nodes are unreachable at once none goes down (one
event says so) until that ends, and a node still silent then has its silence
counted from that moment; at most FLEET_NODE_DOWN_PER_MINUTE nodes go
down per minute. A node that keeps going down and coming back is held out of
placement for a while.

Both beat (`check_nodes`, every node every FLEET_NODE_CHECK_INTERVAL) and the
watch (a ping of every node every FLEET_NODE_PING_INTERVAL) report here;
outcomes are applied under the node's row lock, and one that is older than what
the row already knows is dropped.
"""

import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from fleet import engine, live, queue
from fleet.models import Event, EventKind, Node, next_status
from fleet.models.threads import close_thread_connections

log = logging.getLogger(__name__)

# What a node row shows on the pages: a change to any of it is broadcast.
SHOWN = ("status", "last_error", "unreachable_since", "damped", "held_until", "hold_reason")


def ping(node, timeout=None):
    """Ping a node now; return (sent at, error or "")."""
    sent = timezone.now()
    try:
        engine.ping(node, timeout or settings.FLEET_NODE_PING_TIMEOUT)
    except engine.EngineError as exc:
        return sent, str(exc) or "no answer"
    if node.uses_ssh and not node.ssh_host_key:
        _trust_host_key(node)
    return sent, ""


def _trust_host_key(node):
    """Pin the host key an SSH node's host presented first (trust on first use), once:
    from then on a host presenting another key is refused."""
    presented = engine.host_key_presented(node)
    if presented is None:
        return
    try:
        with transaction.atomic():
            rows = Node.objects.filter(pk=node.pk, ssh_host_key="")
            pinned = rows.update(ssh_host_key=presented.line)
            if pinned:
                Event.objects.record(
                    EventKind.NODE_UPDATED,
                    node=node,
                    new=presented.fingerprint,
                    reason=f"SSH host key {presented} trusted on first use and pinned: a "
                    "host presenting another key is refused from now on",
                )
    except DatabaseError:  # pinned at a later ping; the ping itself was answered
        log.warning("could not pin the SSH host key of %s", node, exc_info=True)
        return
    if pinned:
        live.broadcast("node", node.name)


def check_node(node_id):
    """Ping one node and record it; if it answered, refresh its engine's info too.

    Returns its status, or None if it is gone.
    """
    node = Node.objects.filter(pk=node_id).first()
    if node is None:
        return None
    sent, error = ping(node)
    status = record_ping(node_id, sent, error)
    if status == Node.Status.READY:
        refresh_info(node)
    elif status == Node.Status.UNREACHABLE:
        _check_again_when_due(node_id)
    return status


def _check_again_when_due(node_id):
    """Ping an unreachable node again the moment it will have been silent for
    FLEET_NODE_DOWN_AFTER, when that comes before beat's next check: a check that
    lands a hair before the deadline would otherwise put down off by a whole interval.
    (The watch keeps its own deadline; where it runs, this check finds nothing new.)
    """
    since = Node.objects.filter(pk=node_id).values_list("unreachable_since", flat=True).first()
    if since is None:
        return
    left = settings.FLEET_NODE_DOWN_AFTER - (timezone.now() - since).total_seconds()
    if 0 < left < settings.FLEET_NODE_CHECK_INTERVAL:
        queue.check_node(node_id, after=left)


def refresh_info(node):
    """Ask a node's engine about itself and store what it says; a failure is only logged."""
    try:
        found = engine.info(node, settings.FLEET_NODE_CHECK_TIMEOUT)
    except engine.EngineError as exc:
        log.info("no info from %s (liveness is its ping's business): %s", node, exc)
        return
    facts = dataclasses.asdict(found)  # its fields are the node's
    changed = Node.objects.filter(pk=node.pk).exclude(**facts).update(**facts)
    if changed:
        live.broadcast("node", node.name)


def record_ping(node_id, sent, error=""):
    """Apply one ping's outcome (sent at `sent`; answered unless `error`); return the status.

    An answer to a ping sent before the node was found unreachable says nothing
    about now, nor does a silence that began before its last answer: both are dropped.
    """
    with transaction.atomic():
        node = Node.objects.select_for_update().filter(pk=node_id).first()
        if node is None:
            return None
        old = node.status
        _apply_ping(node, sent, error)
    if old != node.status or node.status == Node.Status.UNREACHABLE or node.damped:
        silent = set(_most_unreachable())
        if silent != set(Node.objects.filter(damped=True).values_list("name", flat=True)):
            _damp_if_most_unreachable()
    return node.status


def _apply_ping(node, sent, error):
    now = timezone.now()
    if (not error and node.unreachable_since and sent < node.unreachable_since) or (
        error and node.last_seen_at and sent < node.last_seen_at
    ):
        return
    before = {name: getattr(node, name) for name in SHOWN}
    old = node.status
    if error:
        node.failures += 1
        node.last_error = error[:1000]
    else:
        node.failures = 0
        node.last_error = ""
        node.last_seen_at = now
        node.damped = False
    node.status, node.unreachable_since = next_status(
        old, node.unreachable_since, not error, sent, now, settings.FLEET_NODE_DOWN_AFTER
    )
    answers = "it answers its ping" + ("" if old == Node.Status.UNKNOWN else " again")
    reason = error or answers
    if node.status == Node.Status.DOWN and old != Node.Status.DOWN:
        held_back = _why_not_down(node, now)
        if held_back:
            node.status = Node.Status.UNREACHABLE
            node.last_error = f"{error[:600]}; {held_back}"
        else:
            silent = (now - node.unreachable_since).total_seconds()
            reason = f"no answer for {silent:.1f} s: {error}"
    if old == Node.Status.DOWN and node.status == Node.Status.READY:
        _hold_if_flapping(node, now)
    node.save()
    if node.status != old:
        Event.objects.record(
            EventKind.NODE_STATUS_CHANGED, node=node, old=old, new=node.status, reason=reason
        )
        if node.status == Node.Status.DOWN:
            queue.move_off(node.pk)
        elif node.status == Node.Status.READY and old == Node.Status.DOWN:
            queue.reconcile()  # clear the stale containers of the replicas that moved away
    if before != {name: getattr(node, name) for name in SHOWN}:
        live.broadcast("node", node.name)


def _why_not_down(node, now):
    """Why a node that has not answered long enough still does not go down, or ""."""
    if node.damped or _most_unreachable():
        node.damped = True
        return "not marked down: most nodes stopped answering at once"
    minute_ago = now - timedelta(minutes=1)
    went_down = Event.objects.filter(
        kind=EventKind.NODE_STATUS_CHANGED, new=Node.Status.DOWN, created_at__gte=minute_ago
    ).count()
    if went_down >= settings.FLEET_NODE_DOWN_PER_MINUTE:
        return (
            f"not marked down yet: {went_down} nodes went down in the last minute "
            f"(FLEET_NODE_DOWN_PER_MINUTE)"
        )
    return ""


def _most_unreachable():
    """The nodes not answering (unreachable, not yet down) if they are more than half of
    all and at least two; else []."""
    statuses = list(Node.objects.values_list("name", "status"))
    silent = [name for name, status in statuses if status == Node.Status.UNREACHABLE]
    return silent if len(silent) >= 2 and 2 * len(silent) > len(statuses) else []


@transaction.atomic
def _damp_if_most_unreachable():
    """Start or end the damping: while most nodes are unreachable, they are marked and kept
    from going down; one event says so when it starts.

    Every node row is locked first, in one order, so that two nodes going silent at
    the same moment record one event between them, never two (nor a deadlock).
    """
    list(Node.objects.select_for_update().order_by("pk").values_list("pk"))
    silent = _most_unreachable()
    if not silent:
        for name in Node.objects.filter(damped=True).values_list("name", flat=True):
            live.broadcast("node", name)
        # A node still silent when most answer again gets its whole down period from
        # now: the nodes rarely come back at the same instant, and the last one's silence
        # under the damping said nothing about it.
        Node.objects.filter(damped=True, status=Node.Status.UNREACHABLE).update(
            unreachable_since=timezone.now()
        )
        Node.objects.filter(damped=True).update(damped=False)
        return
    already = Node.objects.filter(damped=True).exists()
    for name in Node.objects.filter(name__in=silent, damped=False).values_list("name", flat=True):
        live.broadcast("node", name)
    Node.objects.filter(name__in=silent).update(damped=True)
    if not already:
        Event.objects.record(
            EventKind.NODE_STATUS_CHANGED,
            old=Node.Status.READY,
            new=Node.Status.UNREACHABLE,
            reason=(
                f"{len(silent)} of {Node.objects.count()} nodes stopped answering at once "
                f"({', '.join(sorted(silent))}): Fleet suspects its own view of them and "
                "moves nothing until most nodes answer again"
            ),
        )


def _hold_if_flapping(node, now):
    """Hold a node that went down and came back too often out of placement for a while."""
    window = now - timedelta(seconds=settings.FLEET_NODE_FLAP_WINDOW)
    returns = Event.objects.filter(
        kind=EventKind.NODE_STATUS_CHANGED,
        node_name=node.name,
        old=Node.Status.DOWN,
        new=Node.Status.READY,
        created_at__gte=window,
    ).count()
    returns += 1  # this one, whose event is written after
    if returns > settings.FLEET_NODE_FLAP_LIMIT:
        node.held_until = now + timedelta(seconds=settings.FLEET_NODE_HOLD_DOWN)
        minutes = settings.FLEET_NODE_FLAP_WINDOW / 60
        node.hold_reason = (
            f"went down and came back {returns} times in {minutes:g} min: takes no new "
            f"replicas until {node.held_until:%H:%M:%S} UTC"
        )


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
