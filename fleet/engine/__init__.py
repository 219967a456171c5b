"""The Docker engine seam: the one importer of `docker`, and every call Fleet makes to an engine."""

from fleet.engine.client import (
    POOL_SIZE,
    SDK_ERRORS,
    client,
    failure,
    host_key_presented,
    info,
    ping,
)
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
from fleet.engine.events import CONTAINER_ID, GarbledEvent, events

__all__ = [
    "CONTAINER_ID",
    "POOL_SIZE",
    "SDK_ERRORS",
    "ContainerSpec",
    "EngineError",
    "EngineUnreachable",
    "GarbledEvent",
    "ObservedContainer",
    "client",
    "ensure_image",
    "events",
    "failure",
    "follow_logs",
    "host_key_presented",
    "info",
    "list_containers",
    "ping",
    "remove_container",
    "run_container",
]
