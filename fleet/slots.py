"""Bounded slots shared by every process through Redis: a sorted set of slot tokens scored
by when each lapses, so a holder that crashed frees its slot. Used for a node's concurrent
pulls (fleet.engine.pulls) and each user's console sessions (fleet.console.sessions).
"""

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
