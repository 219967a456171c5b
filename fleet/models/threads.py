"""Domain work run in threads of its own (parallel engine calls, node checks).

Django opens one database connection per thread and never closes it by itself:
a function run in a pool thread closes its own when it is done.
"""

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import close_old_connections, connections

P = ParamSpec("P")
R = TypeVar("R")


def close_thread_connections(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap a function run in a worker thread so its database connection is closed after."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            connections.close_all()

    return wrapper
