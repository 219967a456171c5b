"""Wake a converge that waits on its service the moment something it waits for changes.

A converge under way looks again every planner.POLL seconds. What it waits for is
nearly always a replica row that the watch changes (a new replica running, healthy,
gone) or a new request; each of those nudges the service, and the converge's wait
ends at once instead of at the end of its pause. A nudge made while nobody waits is
kept for a few seconds, so none is lost between two looks; several are one. Best
effort: without Redis the wait is a plain sleep, as before.
"""

import logging
import time

from redis.exceptions import RedisError

from fleet import redis_link

log = logging.getLogger(__name__)

KEPT = 5  # seconds a nudge waits for a converge to take it
NUDGE_TIMEOUT = 0.2  # the watch nudges between events: a frozen Redis may not hold it up
WAIT_TIMEOUT = 5.0  # above any pause a converge takes (planner.SHORT_WAIT at most)


def _key(service_id: int) -> str:
    return f"fleet:wake:{service_id}"


def nudge(service_id: int) -> None:
    """Something a converge of this service may be waiting for has changed."""
    try:
        with redis_link.client(NUDGE_TIMEOUT).pipeline() as pipe:
            pipe.rpush(_key(service_id), 1).expire(_key(service_id), KEPT).execute()
    except RedisError as exc:
        log.debug("no wake-up for service %s: %s", service_id, exc)


def wait(service_id: int, seconds: float) -> None:
    """Sleep up to `seconds`, less if the service is nudged meanwhile."""
    if seconds <= 0:
        return  # (BLPOP would take 0 as "for ever")
    began = time.monotonic()
    try:
        link = redis_link.client(WAIT_TIMEOUT)
        if link.blpop([_key(service_id)], timeout=min(seconds, WAIT_TIMEOUT - 1)):
            link.delete(_key(service_id))  # the rest told the same news
    except RedisError as exc:
        log.debug("waiting on service %s without wake-ups: %s", service_id, exc)
        time.sleep(max(0.0, seconds - (time.monotonic() - began)))
