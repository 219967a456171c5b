"""Nodes: what people do to them (actions), their health, and what the watch observes on them."""

from fleet.nodes.actions import (
    NotHeld,
    register,
    release_hold,
    remove,
    request_check,
    set_availability,
    update,
)

__all__ = [
    "NotHeld",
    "register",
    "release_hold",
    "remove",
    "request_check",
    "set_availability",
    "update",
]
