"""Fleet's state, one module per concept."""

from fleet.models.alerts import (
    Alert,
    AlertChannel,
    AlertCursor,
    Delivery,
    Incident,
    PendingDelivery,
)
from fleet.models.events import SYSTEM, Actor, Event, EventKind
from fleet.models.images import ImageCheck
from fleet.models.metrics import (
    MetricThreshold,
    NodeRollup,
    NodeSample,
    ReplicaRollup,
    ReplicaSample,
)
from fleet.models.nodes import Node, next_status
from fleet.models.registries import Registry
from fleet.models.services import Deployment, Replica, Service
from fleet.models.tokens import ApiToken
from fleet.models.webhooks import Webhook

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
    "PendingDelivery",
    "Registry",
    "NodeRollup",
    "NodeSample",
    "Replica",
    "ReplicaRollup",
    "ReplicaSample",
    "Service",
    "Webhook",
    "next_status",
]
