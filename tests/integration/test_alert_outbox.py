# ruff: noqa: F811
"""The deliveries an alert owes, on the database and the real Redis: recorded with the
alert, handed to the broker once it answers, each attempt run at most once, and the
worker's task (delivery.deliver, run here as the worker runs it) sending to a real webhook.
"""

import ast
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from fleet.alerts import delivery, incidents, rules
from fleet.models import Alert, AlertChannel, Delivery, EventKind, PendingDelivery
from fleet.models.events import Event

# The receivers' fixtures, imported to be used by name: pytest passes them as arguments.
from tests.integration.receivers import inbox, receivers  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True, reset_sequences=True)


def queued_deliveries(redis_server):
    """The deliver tasks waiting on the alerts' queue: [(alert, channel, attempt)]."""
    headers = [json.loads(raw)["headers"] for raw in redis_server.client.lrange("alerts", 0, -1)]
    return [
        ast.literal_eval(h["argsrepr"]) for h in headers if h["task"] == "fleet.tasks.deliver_alert"
    ]


def node_down(node="lab-2"):
    Event.objects.record(EventKind.NODE_STATUS_CHANGED, node=node, old="unreachable", new="down")
    incidents.process_events()


def test_an_alert_made_while_redis_is_down_is_queued_by_the_sweep_once_it_is_back(
    redis_server, inbox
):
    channel = AlertChannel.objects.create(name="ops", url=inbox.json_url(), events=["node.down"])
    incidents.process_events()
    redis_server.client.delete("alerts")
    redis_server.stop()
    try:
        node_down()  # the processor runs and commits; the broker refuses the delivery
    finally:
        redis_server.start()
    alert = Alert.objects.get()
    owed = PendingDelivery.objects.get()
    assert (owed.alert, owed.channel, owed.attempt, owed.queued_at) == (alert, channel, 1, None)
    assert queued_deliveries(redis_server) == []
    assert delivery.sweep() == 1
    assert queued_deliveries(redis_server) == [(alert.pk, channel.pk, 1)]
    assert PendingDelivery.objects.get().queued_at is not None
    assert delivery.sweep() == 0  # queued: not handed over again while it may still run
    # The worker runs the task (twice: the broker may give it again); one message arrives.
    assert delivery.deliver(alert.pk, channel.pk, 1).outcome == "sent"
    assert delivery.deliver(alert.pk, channel.pk, 1) is None
    assert [b["title"] for b in inbox.webhook.bodies()] == [alert.title]
    assert not PendingDelivery.objects.exists()


def test_a_task_that_never_ran_is_handed_over_again_and_still_sends_once(redis_server, inbox):
    channel = AlertChannel.objects.create(name="ops", url=inbox.json_url(), events=["node.down"])
    incidents.process_events()
    node_down()  # queued at once (Redis is up)
    alert = Alert.objects.get()
    assert PendingDelivery.objects.get().queued_at is not None
    later = timezone.now() + delivery.HAND_OVER_AGAIN_AFTER
    # Its message is gone (a broker that lost it); once the time has come, again.
    assert delivery.sweep(now=later) == 1
    assert delivery.deliver(alert.pk, channel.pk, 1).outcome == "sent"
    assert delivery.deliver(alert.pk, channel.pk, 1) is None  # the first copy, run late
    assert delivery.sweep(now=later + delivery.HAND_OVER_AGAIN_AFTER) == 0
    assert [b["title"] for b in inbox.webhook.bodies()] == [alert.title]


def test_a_failed_attempt_makes_the_next_one_due_after_its_backoff(redis_server, inbox):
    channel = AlertChannel.objects.create(
        name="down", url=inbox.json_url("fail/x"), events=["node.down"]
    )
    incidents.process_events()
    node_down()
    alert = Alert.objects.get()
    failed = timezone.now()
    assert delivery.deliver(alert.pk, channel.pk, 1).outcome == "failed"
    owed = PendingDelivery.objects.get()
    assert (owed.attempt, owed.queued_at) == (2, None)
    backoff = timedelta(seconds=rules.backoff(1))
    assert delivery.sweep(now=failed) == 0
    assert delivery.sweep(now=owed.due_at) == 1
    assert owed.due_at >= failed + backoff
    channel.url = inbox.json_url()
    channel.save()
    assert delivery.deliver(alert.pk, channel.pk, 2).outcome == "sent"
    assert not PendingDelivery.objects.exists()
    assert list(Delivery.objects.order_by("attempt").values_list("outcome", flat=True)) == [
        "failed",
        "sent",
    ]
