"""Bounded slots shared by every process through Redis: a sorted set of slot tokens scored
by when each lapses, so a holder that crashed frees its slot. Used for a node's concurrent
pulls (fleet.engine.pulls), each user's console sessions (fleet.console.sessions) and each
user's sockets (fleet.access.sockets).
"""

import secrets
import time
from contextlib import suppress

import redis

# Take a slot if fewer than the limit are held, lapsed ones dropped first. KEYS[1] the set;
# ARGV: now, limit, when the new slot lapses, its token, the set's expiry in seconds.
TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""


def take(client: redis.Redis, key: str, limit: int, lapse: float) -> str | None:
    """Take a slot of `key` that lapses in `lapse` seconds unless renewed: its token, or
    None when `limit` are held. A RedisError is the caller's to handle (no count, no bound)."""
    now, token = time.time(), secrets.token_hex(8)
    taken = client.eval(TAKE, 1, key, now, limit, now + lapse, token, lapse)
    return token if taken else None


def renew(client: redis.Redis, key: str, token: str, lapse: float) -> None:
    """Keep a slot for `lapse` seconds more; a Redis that errs lets it lapse."""
    with suppress(redis.RedisError):
        # The set lives as long as its newest slot: its expiry, set when a slot is
        # taken, would otherwise drop every renewed slot `lapse` seconds after that.
        client.pipeline().zadd(key, {token: time.time() + lapse}, xx=True).expire(
            key, int(lapse)
        ).execute()


def release(client: redis.Redis, key: str, token: str) -> None:
    with suppress(redis.RedisError):
        client.zrem(key, token)


def held(client: redis.Redis, key: str) -> int:
    """How many slots of `key` are held now (lapsed ones dropped first)."""
    client.zremrangebyscore(key, "-inf", time.time())
    return int(client.zcard(key))
