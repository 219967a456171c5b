"""A converge's wait ends when its service is nudged, and is a plain sleep without Redis."""

import threading
import time

from fleet.converge import wake


def test_a_nudge_ends_the_wait_of_its_service_and_of_no_other(redis_server):
    timer = threading.Timer(0.2, wake.nudge, args=(41,))
    began = time.monotonic()
    timer.start()
    wake.wait(41, 3)
    assert time.monotonic() - began < 2, "the nudge did not end the wait"
    began = time.monotonic()
    wake.wait(42, 0.5)  # nobody nudged 42
    assert time.monotonic() - began >= 0.5


def test_a_nudge_given_while_nobody_waits_is_kept_for_the_next_wait_and_counts_once(redis_server):
    for _ in range(3):
        wake.nudge(43)
    began = time.monotonic()
    wake.wait(43, 3)
    assert time.monotonic() - began < 1
    began = time.monotonic()
    wake.wait(43, 0.5)  # the other two nudges told the same news
    assert time.monotonic() - began >= 0.5


def test_without_redis_a_nudge_is_dropped_and_the_wait_is_a_plain_sleep(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    wake.nudge(44)
    began = time.monotonic()
    wake.wait(44, 0.5)
    assert 0.5 <= time.monotonic() - began < 2
