"""The Docker engine seam: the one importer of `docker`, and every call Fleet makes to an engine."""

from fleet.engine.client import POOL_SIZE, SDK_ERRORS, client, events, failure, info, ping
from fleet.engine.containers import (
    ContainerSpec,
    ObservedContainer,
    ensure_image,
    follow_logs,
    list_containers,
    remove_container,
    run_container,
)
from fleet.engine.errors import EngineError, EngineUnreachable

__all__ = [
    "POOL_SIZE",
    "SDK_ERRORS",
    "ContainerSpec",
    "EngineError",
    "EngineUnreachable",
    "ObservedContainer",
    "client",
    "ensure_image",
    "events",
    "failure",
    "follow_logs",
    "info",
    "list_containers",
    "ping",
    "remove_container",
    "run_container",
]
