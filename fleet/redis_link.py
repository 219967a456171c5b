"""One Redis client per process for the domain's own keys (pull slots, console places,
converge wake-ups), made on first use from REDIS_URL. (fleet.live, a seam, keeps its own.)"""

import redis
from django.conf import settings

_clients = {}


def client(timeout=2.0):
    """The process's client for REDIS_URL whose calls give up after `timeout` seconds."""
    key = (settings.REDIS_URL, timeout)
    if key not in _clients:
        _clients[key] = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout)
    return _clients[key]
