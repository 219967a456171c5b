"""Replicas' container logs, followed live (the dashboard's log tail).

The socket asks here, never the engine: which container a replica is and on which
node stays the domain's business. A follower gets a Tail: one thread reads the
engine's stream into a buffer of at most BUFFER_LINES lines (BUFFER_BYTES bytes) and
stops reading while it is full, so that a reader slower than the container leaves the
engine's stream waiting rather than the web process holding what it has not sent.
"""

import logging
import threading
from collections import deque
from collections.abc import Callable

from fleet import engine
from fleet.models import Replica

log = logging.getLogger(__name__)

BUFFER_LINES = 2000
BUFFER_BYTES = 256 * 1024
# Each tail holds a thread while it follows: at most this many in one web process.
MAX_TAILS = 200

_tails = 0
_tails_lock = threading.Lock()


class LogsUnavailable(Exception):
    """Why a replica's log cannot be followed; the message is fit to show an operator."""


def follow(replica_pk, tail=100):
    """A stream of the replica's log, as chunks of bytes: the last `tail` lines, then new ones.

    The stream blocks while the container is quiet; close() ends it from another thread.
    """
    replica = Replica.objects.select_related("node").filter(pk=replica_pk).first()
    if replica is None or not replica.container_id or replica.node is None:
        raise LogsUnavailable("no such replica with a container")
    try:
        return engine.follow_logs(replica.node, replica.container_id, tail)
    except engine.EngineError as exc:
        raise LogsUnavailable(f"cannot read logs: {exc}") from exc


def _take_thread():
    global _tails
    with _tails_lock:
        if _tails >= MAX_TAILS:
            raise LogsUnavailable(
                f"this web process already follows {MAX_TAILS} logs, the most it may; "
                "try again once some are stopped"
            )
        _tails += 1


def _free_thread():
    global _tails
    with _tails_lock:
        _tails -= 1


class Tail:
    """A replica's log read ahead into a bounded buffer, emptied by take().

    `wake` is called from the reading thread when lines arrive after a take() found none
    (once per such wait, not once per line), so the taker may sleep in between.
    """

    def __init__(self, stream, wake: Callable[[], None], name="logs"):
        self.stream, self.wake = stream, wake
        self.lines: deque[str] = deque()
        self.size = 0
        self.ended = self.closed = self.wanted = False
        self.changed = threading.Condition()
        try:
            _take_thread()
        except LogsUnavailable:
            stream.close()
            raise
        try:
            threading.Thread(target=self._read, name=name, daemon=True).start()
        except BaseException:
            _free_thread()
            stream.close()
            raise

    def _full(self):
        return len(self.lines) >= BUFFER_LINES or self.size >= BUFFER_BYTES

    def _read(self):
        try:
            for chunk in self.stream:
                with self.changed:
                    while self._full() and not self.closed:
                        self.changed.wait()  # paused: the engine's stream waits with us
                    if self.closed:
                        break
                    for line in chunk.decode("utf-8", "replace").splitlines():
                        self.lines.append(line)
                        self.size += len(line) + 1
                    wake, self.wanted = self.wanted, False
                if wake:
                    self.wake()
        except Exception as exc:  # noqa: BLE001 (closed under us, or the engine went)
            if not self.closed:
                log.info("log tail %s ended: %s", threading.current_thread().name, exc)
        finally:
            _free_thread()
            with self.changed:
                self.ended, wake, self.wanted = True, self.wanted, False
            if wake:
                self.wake()

    def take(self, max_lines: int, max_bytes: int) -> tuple[list[str], bool]:
        """Up to max_lines lines (and about max_bytes) in order, and whether the log has
        ended with them (nothing more will come)."""
        taken: list[str] = []
        size = 0
        with self.changed:
            while self.lines and len(taken) < max_lines and (not taken or size < max_bytes):
                line = self.lines.popleft()
                taken.append(line)
                size += len(line) + 1
            self.size -= size
            self.wanted = not self.lines
            self.changed.notify_all()
            return taken, self.ended and not self.lines

    def close(self):
        """Stop reading (from any thread): the reading thread ends soon after."""
        with self.changed:
            self.closed = True
            self.changed.notify_all()
        self.stream.close()
