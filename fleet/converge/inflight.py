"""Engine calls this process runs at once, and what they have under way.

Calls (and run_parallel) run a converge's container calls on all nodes at once; the
containers they are removing are `going` (no row claims them, yet they are no orphans),
and `starting` counts the starts on each node, which an old replica's stop waits out
(see Starts).

What is going is known to every process, not only to the one removing it: a container
being drained must not be taken for an orphan by another worker's converge or the
reconcile, even once the process that drains it has died. Each is written down in Redis
until its drain and stop could have ended (`hold` seconds); past that, one whose removal
died with its process is an orphan like any other.
"""

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import redis

from fleet import engine, redis_link
from fleet.models import Node, Replica

if TYPE_CHECKING:
    from django.db.models import QuerySet

STARTS_WAIT = 5  # seconds an old replica's stop waits for the starts beside it, at most
GOING = "fleet:converge:going"  # Redis: container id -> until when (epoch s) it is going
DEFAULT_HOLD = 60.0  # seconds: a removal without a drain (the stop's time and a margin)

log = logging.getLogger(__name__)

# Containers this process is draining and removing: no row claims them any more, yet
# they are not orphans (a converge that looks again meanwhile must leave them be).
_going: set[str] = set()
_going_lock = threading.Lock()


# One engine call: (function, *its arguments).
Call = tuple[Callable[..., object], *tuple[Any, ...]]


def going() -> set[str]:
    """The ids of the containers being removed now, by this process or any other."""
    with _going_lock:
        found = set(_going)
    now = time.time()
    try:
        shared = redis_link.client().pipeline()
        shared.zremrangebyscore(GOING, "-inf", now).zrangebyscore(GOING, now, "+inf")
        found.update(member.decode() for member in shared.execute()[1])
    except redis.RedisError as exc:
        log.warning("cannot read what other processes are removing: %s", exc)
    return found


def will_go(container_ids: Iterable[str], hold: float = DEFAULT_HOLD) -> None:
    """Count these containers as going from now until a removal of each has ended, and
    for every process for `hold` seconds at most (the drain, the stop and a margin)."""
    ids = [c for c in container_ids if c]
    if not ids:
        return
    with _going_lock:
        _going.update(ids)
    until = time.time() + hold
    try:
        # GT: a longer hold already written (a drain under way) is never shortened.
        redis_link.client().zadd(GOING, dict.fromkeys(ids, until), gt=True)
    except redis.RedisError as exc:
        log.warning("cannot tell other processes what is being removed: %s", exc)


@contextmanager
def removing(container_id: str, hold: float = DEFAULT_HOLD) -> Iterator[None]:
    """Count the container as going while the block removes it."""
    will_go([container_id], hold)
    try:
        yield
    finally:
        with _going_lock:
            _going.discard(container_id)
        if container_id:
            try:
                redis_link.client().zrem(GOING, container_id)
            except redis.RedisError as exc:
                log.warning("cannot tell other processes %s is gone: %s", container_id, exc)


def run_parallel(calls: Sequence[Call]) -> None:
    """Run (function, args) pairs at once and wait for them; see Calls."""
    batch = Calls()
    try:
        batch.submit(calls)
        batch.wait()
    finally:
        batch.close()


class Calls:
    """Engine calls run at once: those on different nodes never wait in line.

    run_parallel waits for its calls at once; a converge may let a rolling update's
    starts and removals run on while it looks again (the next slot's replacement then
    need not wait for the last one's), and waits for them before it ends.

    A call still waiting on a node that has meanwhile been marked down (a frozen
    engine answers nothing until the call times out) is not waited for: it
    finishes on its own, and every call is safe to finish late.
    """

    def __init__(self, on_done: Callable[[], object] | None = None) -> None:
        self.pool: ThreadPoolExecutor | None = None
        # future -> ids of the nodes its call works on
        self.pending: dict[Future[Any], set[int]] = {}
        self.on_done = on_done  # called in the call's thread as each call ends

    def submit(self, calls: Sequence[Call]) -> None:
        if not calls:
            return
        if self.pool is None:
            self.pool = ThreadPoolExecutor(engine.POOL_SIZE, thread_name_prefix="engine-call")
        for func, *args in calls:
            future = self.pool.submit(func, *args)
            if self.on_done is not None:
                future.add_done_callback(lambda _: self.on_done())  # type: ignore[misc]  # not None: just checked
            self.pending[future] = _nodes_of(args)

    def busy(self) -> bool:
        """Whether a call is still running; one that failed raises its error here."""
        self._collect(0)
        return bool(self.pending)

    def wait(self) -> None:
        """Wait for every call (but those on nodes marked down); raise the first error."""
        while self.pending:
            self._collect(1.0)
            if self.pending:
                down: QuerySet[Node] | set[int]
                down = Node.objects.filter(
                    pk__in=set().union(*self.pending.values()), status=Node.Status.DOWN
                )
                down = set(down.values_list("pk", flat=True))
                self.pending = {f: ids for f, ids in self.pending.items() if not ids & down}

    def _collect(self, timeout: float) -> None:
        if not self.pending:
            return
        done, _ = wait(self.pending, timeout=timeout)
        for future in done:
            del self.pending[future]
            future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False)


def _nodes_of(args: Sequence[object]) -> set[int]:
    """The ids of the nodes a call works on: those of its Node and Replica arguments."""
    ids = {a.pk for a in args if isinstance(a, Node)}
    return ids | {a.node_id for a in args if isinstance(a, Replica) and a.node_id}


class Starts:
    """Starts made beside removals: `start` makes one with `start_one` and counts it as it
    ends, `wait` blocks until all have (or STARTS_WAIT seconds have passed, should one
    hang on a frozen node)."""

    def __init__(self, count: int, start_one: Callable[[Replica], object]) -> None:
        self.left, self.lock, self.ended = count, threading.Lock(), threading.Event()
        self.start_one = start_one
        if count <= 0:
            self.ended.set()

    def start(self, replica: Replica) -> None:
        try:
            self.start_one(replica)
        finally:
            with self.lock:
                self.left -= 1
                if self.left <= 0:
                    self.ended.set()

    def wait(self, node_id: int | None = None) -> None:
        """Until these starts have ended, then until no start runs on the node (a later
        look's), STARTS_WAIT seconds at most in all."""
        deadline = time.monotonic() + STARTS_WAIT
        self.ended.wait(STARTS_WAIT)
        if node_id is not None:
            starting.quiet(node_id, deadline - time.monotonic())


class _Starting:
    """How many containers this process is creating and starting on each node now."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.count: Counter[int] = Counter()

    @contextmanager
    def on(self, node_id: int) -> Iterator[None]:
        with self.changed:
            self.count[node_id] += 1
        try:
            yield
        finally:
            with self.changed:
                self.count[node_id] -= 1
                if self.count[node_id] <= 0:
                    del self.count[node_id]
                    self.changed.notify_all()

    def quiet(self, node_id: int, timeout: float) -> None:
        """Wait until no start runs on the node, `timeout` seconds at most."""
        with self.changed:
            self.changed.wait_for(lambda: not self.count[node_id], max(0.0, timeout))


starting = _Starting()
