"""A followed log's buffer: lines in order, bounded, its reading paused while full."""

import threading
import time

import pytest

from fleet.console import logs


class Stream:
    """An engine's log stream as the seam hands it over: chunks of bytes, close() ends it.
    This one has `chunks` lines ready at once, and counts how many were read."""

    def __init__(self, chunks):
        self.chunks, self.read, self.closed = chunks, 0, threading.Event()

    def __iter__(self):
        for n in range(self.chunks):
            if self.closed.is_set():
                return
            self.read += 1
            yield f"line {n}\n".encode()
        self.closed.wait()  # a container still running but quiet

    def close(self):
        self.closed.set()


def wait_until(predicate, timeout=5):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_reader_slower_than_the_log_pauses_it_at_the_buffers_bound():
    stream = Stream(logs.BUFFER_LINES * 10)
    tail = logs.Tail(stream, lambda: None)
    wait_until(lambda: len(tail.lines) == logs.BUFFER_LINES)
    time.sleep(0.2)
    assert stream.read <= logs.BUFFER_LINES + 1, "nothing is read while the buffer is full"
    lines, ended = tail.take(100, 1 << 20)
    assert lines == [f"line {n}" for n in range(100)] and not ended
    wait_until(lambda: len(tail.lines) == logs.BUFFER_LINES)  # read again, as far as room
    assert stream.read <= logs.BUFFER_LINES + 101
    tail.close()
    wait_until(lambda: tail.ended)


def test_take_gives_lines_in_order_within_its_bounds_and_says_when_the_log_ended():
    stream = Stream(10)
    tail = logs.Tail(stream, lambda: None)
    wait_until(lambda: len(tail.lines) == 10)
    assert tail.take(3, 1 << 20) == (["line 0", "line 1", "line 2"], False)
    assert tail.take(100, 10) == (["line 3", "line 4"], False)  # about 10 bytes: 7 each
    stream.close()
    wait_until(lambda: tail.ended)
    assert tail.take(100, 1 << 20) == ([f"line {n}" for n in range(5, 10)], True)


def test_the_taker_is_woken_once_per_wait_not_once_per_line():
    wakes = []
    gate = threading.Event()

    class Slow(Stream):
        def __iter__(self):
            gate.wait()
            yield from super().__iter__()

    stream = Slow(500)
    tail = logs.Tail(stream, lambda: wakes.append(1))
    assert tail.take(10, 1 << 20) == ([], False)  # nothing yet: wake me
    gate.set()
    wait_until(lambda: len(tail.lines) == 500)
    assert len(wakes) == 1
    tail.close()
    wait_until(lambda: tail.ended)


def test_a_process_follows_a_bounded_number_of_logs(monkeypatch):
    wait_until(lambda: logs._tails == 0)  # the other tests' tails have ended
    monkeypatch.setattr(logs, "MAX_TAILS", 2)
    streams = [Stream(0) for _ in range(3)]
    tails = [logs.Tail(s, lambda: None) for s in streams[:2]]
    with pytest.raises(logs.LogsUnavailable, match="already follows 2 logs"):
        logs.Tail(streams[2], lambda: None)
    assert streams[2].closed.is_set(), "the refused stream is not left open"
    tails[0].close()
    wait_until(lambda: tails[0].ended)
    another = logs.Tail(Stream(0), lambda: None)  # its thread freed, another may follow
    for tail in (another, tails[1]):
        tail.close()
        wait_until(lambda tail=tail: tail.ended)
