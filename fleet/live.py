"""broadcast(): the one way anything reaches a browser.

After the current transaction commits, broadcast() hands (type, id) to this
process's sender thread. A change after a quiet spell goes out at once; during a
burst the sender gathers what arrives within 100 ms of its previous send (one
message per object, none dropped). It reads each object as it is now,
numbers the message from a sequence shared by every process (a Redis counter)
and sends it to the Channels group every dashboard joins. Each message is an
envelope {"type", "id", "seq", "data", "html"}: `data` as the REST API names the
fields, `html` the same template fragment the page renders on GET. An object
that no longer exists goes out with data null and empty html. While no socket is
in the group (no dashboard open), changes are dropped before they are rendered.

This module knows nothing of pages: the dashboard registers, when its app is
ready, how each kind is rendered (register()), as Django's admin registry does.
An object shown in more than one way (a node as a row of the overview and as the
summary on its own page) sends its other fragments in the same message, under
"views" ({view type: html}), so that one change is still one message per socket.
"""

import asyncio
import json
import logging
import queue
import threading
import time

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connections, transaction

from fleet import live_layer

log = logging.getLogger(__name__)

GROUP = "fleet"
COALESCE = 0.1  # seconds; at most 250 ms is promised
SEQ_KEY = "fleet:live:seq"
LATER = {"event", "delivery"}  # kinds that go out after the rest of their burst

_pending = queue.Queue()
_sender = None
_sender_lock = threading.Lock()
_redis = None
_renderers = {}  # kind -> render(key) -> (data, html)
_views = {}  # kind -> {view type: render(key) -> html}


def register(kind, render):
    """Render each change of `kind` with render(key) -> (data, html); data is None once
    the object is gone. Called by the dashboard when its app is ready."""
    _renderers[kind] = render


def register_view(kind, view, render):
    """Send another fragment of `kind`, render(key) -> html, with each of its messages."""
    _views.setdefault(kind, {})[view] = render


def broadcast(kind, key):
    """Tell every open dashboard that this object changed (once the transaction commits)."""
    transaction.on_commit(lambda: _enqueue(kind, key))


def login_group(user_pk):
    """The group every open socket of one user joins, to hear that a login of theirs ended."""
    return f"login-{user_pk}"


def login_changed(user_pk):
    """Tell the user's open sockets (once the transaction commits) that a login of theirs
    may have ended: logged out, a token revoked, the role or the account changed. Each
    socket checks its own login then, and closes if that is what ended."""
    transaction.on_commit(lambda: _send_login_changed(user_pk))


def _send_login_changed(user_pk):
    try:
        async_to_sync(get_channel_layer().group_send)(
            login_group(user_pk), {"type": "fleet.login_changed"}
        )
    except Exception:  # the sockets' own periodic check still ends them, only later
        log.exception("could not tell the sockets of user %s that a login changed", user_pk)


def broadcast_replica(replica):
    """A replica changed, and with it its service's counts and its node's reservations."""
    broadcast("replica", replica.pk)
    broadcast("service", replica.service.name)
    if replica.node_id:
        broadcast("node", replica.node.name)


def _enqueue(kind, key):
    global _sender
    with _sender_lock:
        if _sender is None or not _sender.is_alive():
            _sender = threading.Thread(target=_send_forever, name="live-sender", daemon=True)
            _sender.start()
    _pending.put((kind, key))


def _redis_client():
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    return _redis


def current_seq():
    """The sequence number of the newest message sent."""
    return int(_redis_client().get(SEQ_KEY) or 0)


def next_seq():
    return int(_redis_client().incr(SEQ_KEY))


class _Batch(list):
    """The distinct changes of one send, knowing how many were queued for them."""

    def __init__(self, changes, gets):
        super().__init__(changes)
        self.gets = gets


def _gather(last_sent):
    """Block for the next change; return it with whatever else arrives before the window ends.

    The window runs COALESCE seconds from the previous send, so a change after a
    quiet spell goes out at once, and during a burst at most every COALESCE seconds.
    """
    batch = {_pending.get(): None}
    gets = 1
    deadline = last_sent + COALESCE
    while True:
        try:
            batch[_pending.get(timeout=max(0.0, deadline - time.monotonic()))] = None
            gets += 1
        except queue.Empty:
            return _Batch(batch, gets)


def _send_forever():
    loop = asyncio.new_event_loop()
    layer = get_channel_layer()
    last_sent = 0.0
    while True:
        changes = _gather(last_sent)
        last_sent = time.monotonic()
        close_old_connections()
        try:
            if not _anyone_listening():
                continue  # the finally below still counts them done
            # State first, the feed after: every socket gets each message in turn, so the
            # node, service or replica a change is about should not wait behind its event.
            # Each goes out as soon as it is rendered, not after the whole burst is.
            for kind, key in sorted(changes, key=lambda change: change[0] in LATER):
                message = envelope(kind, key)
                message["seq"] = next_seq()
                # Encoded once here, not once per socket: each of them sends the same text.
                text = json.dumps(message)
                _publish(loop, layer, text)
        except Exception:  # the dashboard misses these; its next snapshot puts it right
            log.exception("could not send %d live change(s)", len(changes))
        finally:
            connections.close_all()  # this thread's own; never left open between bursts
            for _ in range(changes.gets):
                _pending.task_done()


def _publish(loop, layer, text):
    """Send one message to every socket; once more if the link to Redis was broken (a
    restart of Redis leaves the pooled connection dead: the first send on it fails and
    drops it, the next makes a new one)."""
    for attempt in (1, 2):
        try:
            loop.run_until_complete(
                layer.group_send(GROUP, {"type": "fleet.message", "text": text})
            )
            return
        except redis.ConnectionError:
            if attempt == 2:
                raise


def _anyone_listening():
    """Whether any socket is in the group (a server process with one in it subscribes to
    the group's channel). With none, a change is neither rendered nor sent: a socket that
    joins later takes its snapshot after joining, which already shows it."""
    try:
        [(_, subscribers)] = _redis_client().pubsub_numsub(live_layer.group_channel(GROUP))
        return bool(subscribers)
    except redis.RedisError:
        return True  # not known: send, as if someone were


def wait_idle(timeout):
    """Wait until every change handed to this process's sender has been sent (or failed);
    return whether it came to that within `timeout` seconds. For the tests, which must
    not empty the database under a sender still reading it."""
    deadline = time.monotonic() + timeout
    while _pending.unfinished_tasks:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def envelope(kind, key):
    """The message for one object as it is now."""
    if kind not in _renderers:
        raise LookupError(f"nothing renders {kind!r} (is the dashboard installed?)")
    data, html = _renderers[kind](key)
    message = {"type": kind, "id": key, "seq": None, "data": data, "html": html}
    if kind in _views:
        views = _views[kind].items()
        message["views"] = {view: render(key) if data else "" for view, render in views}
    return message
