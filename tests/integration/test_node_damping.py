"""Damping, from ping outcomes recorded as the watch and beat record them (no engines).

A ping "sent" 11 s ago and unanswered stands for a node silent longer than
FLEET_NODE_DOWN_AFTER (10 s at the defaults), so it goes down at once unless a
brake holds it back.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from fleet.models import Event, EventKind, Node
from fleet.nodes import health

pytestmark = pytest.mark.django_db

SILENT = "no answer within 2 s"


def nodes(count):
    return [
        Node.objects.create(name=f"n{i}", endpoint=f"tcp://127.0.0.1:{20000 + i}", status="ready")
        for i in range(1, count + 1)
    ]


def long_silent(node):
    """A ping unanswered since 11 s ago, the node's last answer before that."""
    sent = timezone.now() - timedelta(seconds=settings.FLEET_NODE_DOWN_AFTER + 1)
    Node.objects.filter(pk=node.pk, last_seen_at__gt=sent).update(
        last_seen_at=sent - timedelta(seconds=1)
    )
    return health.record_ping(node.pk, sent, SILENT)


def answers(node):
    return health.record_ping(node.pk, timezone.now(), "")


def fleet_wide_events():
    return Event.objects.filter(kind=EventKind.NODE_STATUS_CHANGED, node_name="")


def test_one_node_silent_long_enough_goes_down_and_answering_brings_it_back(db):
    (node, *_) = nodes(3)
    assert long_silent(node) == "down"
    assert answers(node) == "ready"
    changes = Event.objects.filter(node_name="n1").order_by("id").values_list("old", "new")
    assert list(changes) == [("ready", "down"), ("down", "ready")]


def test_a_silence_shorter_than_the_period_leaves_a_node_unreachable(db):
    (node, *_) = nodes(3)
    assert health.record_ping(node.pk, timezone.now(), SILENT) == "unreachable"
    assert health.record_ping(node.pk, timezone.now(), SILENT) == "unreachable"
    assert answers(node) == "ready"
    assert not Event.objects.filter(new="down").exists()


def test_most_nodes_silent_at_once_go_no_further_than_unreachable_and_one_event_says_so(db):
    first, second, third = nodes(3)
    for node in (first, second):
        health.record_ping(node.pk, timezone.now(), SILENT)
    # As if 11 s had passed since.
    eleven_ago = timezone.now() - timedelta(seconds=settings.FLEET_NODE_DOWN_AFTER + 1)
    Node.objects.filter(status="unreachable").update(unreachable_since=eleven_ago)
    for _ in range(3):
        assert long_silent(first) == long_silent(second) == "unreachable"
    assert fleet_wide_events().count() == 1
    assert "2 of 3 nodes stopped answering at once (n1, n2)" in fleet_wide_events().get().reason
    assert set(Node.objects.filter(damped=True).values_list("name", flat=True)) == {"n1", "n2"}
    # One answers: no longer most of them. The other's silence under the damping said
    # nothing about it: it has its whole down period from now, then goes down.
    assert answers(first) == "ready"
    assert not Node.objects.filter(damped=True).exists()
    assert long_silent(second) == "unreachable"
    assert Node.objects.get(pk=second.pk).unreachable_since > timezone.now() - timedelta(seconds=5)
    Node.objects.filter(pk=second.pk).update(unreachable_since=eleven_ago)
    assert long_silent(second) == "down"
    assert fleet_wide_events().count() == 1
    assert third.schedulable


def test_downs_are_rate_limited_per_minute(db):
    fleet = nodes(2 * settings.FLEET_NODE_DOWN_PER_MINUTE + 3)
    outcomes = [long_silent(node) for node in fleet[: settings.FLEET_NODE_DOWN_PER_MINUTE + 1]]
    assert outcomes == ["down"] * settings.FLEET_NODE_DOWN_PER_MINUTE + ["unreachable"]
    waiting = Node.objects.get(pk=fleet[settings.FLEET_NODE_DOWN_PER_MINUTE].pk)
    assert "went down in the last minute" in waiting.last_error


def test_a_node_that_keeps_going_down_and_coming_back_is_held_out_of_placement(db):
    (node, *_) = nodes(3)
    for _ in range(settings.FLEET_NODE_FLAP_LIMIT):
        long_silent(node)
        answers(node)
        assert Node.objects.get(pk=node.pk).schedulable
    long_silent(node)
    answers(node)
    held = Node.objects.get(pk=node.pk)
    assert held.status == "ready" and held.held and not held.schedulable
    assert f"came back {settings.FLEET_NODE_FLAP_LIMIT + 1} times" in held.hold_reason
    assert held.held_until - timezone.now() > timedelta(seconds=settings.FLEET_NODE_HOLD_DOWN - 5)


def test_an_answer_older_than_the_silence_does_not_make_a_node_ready(db):
    (node, *_) = nodes(3)
    earlier = timezone.now() - timedelta(seconds=1)
    health.record_ping(node.pk, timezone.now(), SILENT)
    assert health.record_ping(node.pk, earlier, "") == "unreachable"
