"""What people do to nodes: register, change, remove, drain, activate and lift a hold.

The API, the admin and the dashboard all call these, so every door writes the
same Event and queues the same follow-up work.
"""

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from fleet import live, queue
from fleet.models import SYSTEM, Actor, Event, EventKind, Node

# Fields whose values may be recorded in an event; certificates and keys never are.
PUBLIC_FIELDS = ("endpoint", "labels", "availability", "ssh_host_key")
SECRET_FIELDS = ("tls_ca", "tls_cert", "tls_key", "ssh_key")


@transaction.atomic
def register(node: Node, actor: Actor = SYSTEM) -> Node:
    """Save a new node (validated first) and check it at once rather than at the next tick."""
    node.full_clean()
    node.save()
    Event.objects.record(EventKind.NODE_REGISTERED, actor=actor, node=node, new=node.endpoint)
    live.broadcast("node", node.name)
    queue.check_node(node.pk)
    return node


@transaction.atomic
def update(node: Node, changes: dict[str, Any], actor: Actor = SYSTEM) -> Node:
    """Apply field changes to a node; availability changes are recorded as their own kind."""
    availability = changes.pop("availability", node.availability)
    before = {field: getattr(node, field) for field in changes}
    for field, value in changes.items():
        setattr(node, field, value)
    node.full_clean()
    changed = [field for field, old in before.items() if getattr(node, field) != old]
    if changed:
        # Only what was edited: the status, hold and figures the watch and the health
        # checks write may have changed since this row was read.
        node.save(update_fields=[*changed, "updated_at"])
        shown = [f for f in changed if f in PUBLIC_FIELDS] + [
            f"{f} (secret)" for f in changed if f in SECRET_FIELDS
        ]
        Event.objects.record(
            EventKind.NODE_UPDATED, actor=actor, node=node, reason="changed " + ", ".join(shown)
        )
        live.broadcast("node", node.name)
        if {"endpoint", "ssh_host_key", *SECRET_FIELDS} & set(changed):
            queue.check_node(node.pk)
    set_availability(node, availability, actor)
    return node


@transaction.atomic
def set_availability(
    node: Node, availability: str, actor: Actor = SYSTEM, reason: str = ""
) -> Node:
    """Make a node active, paused or drained; a no-op when it already is.

    Paused, it takes no new replicas; drained, its replicas also move to other nodes,
    `parallelism` of a service at a time, each stopped here and then started where
    placement says (see converge.planner's plan_moves).
    """
    if availability not in Node.Availability.values:
        raise ValueError(f"unknown availability {availability!r}")
    old = node.availability
    if old == availability:
        return node
    node.availability = availability
    node.save(update_fields=["availability", "updated_at"])
    Event.objects.record(
        EventKind.NODE_AVAILABILITY_CHANGED,
        actor=actor,
        node=node,
        old=old,
        new=availability,
        reason=reason,
    )
    live.broadcast("node", node.name)
    if availability == Node.Availability.DRAIN:
        queue.move_off(node.pk)
    return node


class NotHeld(ValueError):
    """The node is not held out of placement: there is no hold to lift."""


@transaction.atomic
def release_hold(node: Node, actor: Actor = SYSTEM) -> Node:
    """Lift the hold-down of a node that flapped, so that it takes new replicas at once.

    Nothing moves back to it by itself: it takes new replicas from now on.
    """
    node = Node.objects.select_for_update().get(pk=node.pk)
    if not node.held:
        raise NotHeld(f"{node.name} is not held out of placement; there is no hold to lift.")
    reason = node.hold_reason
    node.held_until, node.hold_reason = None, ""
    node.save(update_fields=["held_until", "hold_reason", "updated_at"])
    Event.objects.record(
        EventKind.NODE_UPDATED, actor=actor, node=node, reason=f"hold lifted (was: {reason})"
    )
    live.broadcast("node", node.name)
    return node


@transaction.atomic
def remove(node: Node, actor: Actor = SYSTEM, reason: str = "") -> None:
    """Forget a node. Its engine and containers are left as they are."""
    Event.objects.record(
        EventKind.NODE_REMOVED, actor=actor, node=node, old=node.endpoint, reason=reason
    )
    node.delete()
    live.broadcast("node", node.name)


def request_check(nodes: Iterable[Node]) -> None:
    """Queue an immediate health check of each node."""
    for node in nodes:
        queue.check_node(node.pk)
