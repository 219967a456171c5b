"""Fleet's state, one module per concept."""

from .alerts import Alert, AlertChannel, AlertCursor, Delivery, Incident
from .events import SYSTEM, Actor, Event, EventKind
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
    "Node",
    "Replica",
    "Service",
    "Webhook",
    "next_status",
]
