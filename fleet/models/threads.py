"""Domain work run in threads of its own (parallel engine calls, node checks).

Django opens one database connection per thread and never closes it by itself:
a function run in a pool thread closes its own when it is done.
"""

import functools

from django.db import close_old_connections, connections


def close_thread_connections(func):
    """Wrap a function run in a worker thread so its database connection is closed after."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            connections.close_all()

    return wrapper
