"""How many pulls run at once on a node: FLEET_PULL_CONCURRENCY slots, shared by every
process through Redis.

Part of the Docker seam (fleet.engine.client.ensure_image holds a slot while it pulls);
it imports nothing of Docker's.
"""

import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import redis
from django.conf import settings

from fleet import redis_link, slots
from fleet.engine.errors import PULL_BUSY, PullError
from fleet.engine.node import EngineNode

log = logging.getLogger(__name__)


@contextmanager
def pull_slot(node: EngineNode, image: str, deadline: float) -> Iterator[None]:
    """Hold one of the node's FLEET_PULL_CONCURRENCY pull slots until the block ends.

    Without Redis the pull goes ahead unlimited (logged): a limit must not stop work.
    """
    key, token = f"fleet:pulls:{node.endpoint}", secrets.token_hex(8)
    limit, lapse = settings.FLEET_PULL_CONCURRENCY, settings.FLEET_PULL_TIMEOUT + 30
    held = False
    while not held:
        now = time.time()
        try:
            args = (now, limit, now + lapse, token, int(lapse))
            held = bool(redis_link.client(timeout=5).eval(slots.TAKE, 1, key, *args))
        except redis.RedisError as exc:
            log.warning("pull of %s on %s not limited: %s", image, node, exc)
            break
        if not held and time.monotonic() > deadline:
            raise PullError(
                f"cannot pull {image}: {limit} other pulls on {node} took all "
                f"{settings.FLEET_PULL_TIMEOUT:g} s",
                PULL_BUSY,
            )
        if not held:
            time.sleep(0.5)
    try:
        yield
    finally:
        if held:
            with suppress(redis.RedisError):
                redis_link.client(timeout=5).zrem(key, token)
