"""Fleet's state, one module per concept."""

from .alerts import Alert, AlertChannel, AlertCursor, Delivery, Incident
from .events import SYSTEM, Actor, Event, EventKind
from .images import ImageCheck
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
from .webhooks import Webhook

__all__ = [
    "SYSTEM",
    "Actor",
    "Alert",
    "AlertChannel",
    "AlertCursor",
    "Delivery",
    "Incident",
    "ApiToken",
    "Deployment",
    "Event",
    "EventKind",
    "ImageCheck",
    "MetricThreshold",
    "Node",
    "NodeRollup",
    "NodeSample",
    "Replica",
    "ReplicaRollup",
    "ReplicaSample",
    "Service",
    "Webhook",
    "next_status",
]
