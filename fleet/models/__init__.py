"""Fleet's state, one module per concept."""

from .events import SYSTEM, Actor, Event, EventKind
from .metrics import (
    MetricThreshold,
    NodeRollup,
    NodeSample,
    ReplicaRollup,
    ReplicaSample,
)
from .nodes import Node, next_status
from .services import Deployment, Replica, Service
from .tokens import ApiToken

__all__ = [
    "SYSTEM",
    "Actor",
    "ApiToken",
    "Deployment",
    "Event",
    "EventKind",
    "MetricThreshold",
    "Node",
    "NodeRollup",
    "NodeSample",
    "Replica",
    "ReplicaRollup",
    "ReplicaSample",
    "Service",
    "next_status",
]
