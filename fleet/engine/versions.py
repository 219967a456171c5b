"""Which Engine API version Fleet speaks with an engine: the lower of the engine's and Fleet's.

Every engine says the newest API version it speaks in the `Api-Version` header of its
answer to GET /_ping, which Fleet sends anyway. Engines refuse versions that are too
old for them (Docker 29 refuses everything below 1.44 by default), and versions newer
than theirs, so Fleet speaks the engine's own version, capped at the newest one the
Docker SDK it builds its requests with knows. Imports nothing of Docker's.
"""

import re

from fleet.engine.errors import EngineError

# Docker 20.10's API: the oldest engine Fleet has been tested with and supports.
OLDEST = "1.41"
# The newest version the Docker SDK for Python (7.1) builds requests for (Docker 26).
# Docker 29 accepts 1.44 and later by default, so this must stay at 1.44 or above.
NEWEST = "1.45"
# Docker versions by the API version they brought, for messages (docs.docker.com's table).
DOCKER_OF = {"1.41": "20.10", "1.42": "23.0", "1.43": "24.0", "1.44": "25.0", "1.45": "26.0"}

_VERSION = re.compile(r"1\.(\d{1,3})")


class EngineTooOld(EngineError):
    """The engine speaks only API versions older than the oldest Fleet supports."""


def parse(version: str) -> tuple[int, int]:
    """`1.45` -> (1, 45); ValueError for anything else."""
    found = _VERSION.fullmatch(version.strip())
    if found is None:
        raise ValueError(f"not an Engine API version: {version[:40]!r}")
    return (1, int(found[1]))


def spoken(engine_api: str | None) -> str:
    """The version to speak with an engine whose newest is `engine_api` (its ping's
    Api-Version header); EngineError when it says none or one Fleet cannot use."""
    if not engine_api:
        raise EngineError(
            "the engine's answer to /_ping carries no Api-Version header: is it a Docker engine?"
        )
    try:
        engine = parse(engine_api)
    except ValueError as exc:
        raise EngineError(f"the engine's Api-Version header is garbled: {exc}") from None
    if engine < parse(OLDEST):
        raise EngineTooOld(
            f"the engine speaks Docker Engine API {engine_api} at most; Fleet needs "
            f"{OLDEST} (Docker {DOCKER_OF[OLDEST]}) or newer: upgrade Docker on this node"
        )
    return NEWEST if engine > parse(NEWEST) else f"1.{engine[1]}"
