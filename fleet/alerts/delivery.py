"""Delivery: one Celery task per (alert, channel), each attempt a Delivery row.

A channel that is down or slow holds only its own task, FLEET_ALERT_TIMEOUT seconds
per attempt at most; a failed attempt queues the next one after a backoff (2 s, 4 s,
8 s ...), FLEET_ALERT_RETRIES times, then gives up and says so in its row. A task
run twice (a worker died and the broker gave it again) finds its attempt's row
taken, or the alert already sent, and does nothing.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from fleet import live, notify, queue
from fleet.alerts import messages, rules
from fleet.models.alerts import Alert, AlertChannel, Delivery

log = logging.getLogger(__name__)

# A delivery task is killed at 90 s (its time limit): an attempt still "sending" after this
# was abandoned by a worker that died, and its task, given again, finds the row taken.
ABANDONED_AFTER = timedelta(seconds=120)

KIND: dict[str, str] = {
    Alert.Phase.OPENED: "failure",
    Alert.Phase.RESOLVED: "success",
    Alert.Phase.NOTICE: "info",
    Alert.Phase.TEST: "info",
}


def _claim(alert: Alert, channel: AlertChannel, attempt: int) -> Delivery | None:
    """This attempt's row, or None when it is someone else's or the alert already went."""
    sent = Delivery.objects.filter(alert=alert, channel=channel, outcome=Delivery.Outcome.SENT)
    if sent.exists():
        return None
    try:
        with transaction.atomic():
            return Delivery.objects.create(alert=alert, channel=channel, attempt=attempt)
    except IntegrityError:
        return None


def deliver(alert_id: int, channel_id: int, attempt: int = 1) -> Delivery | None:
    """Send one alert to one channel (one attempt); queue the next attempt if it failed."""
    alert = Alert.objects.select_related("incident").filter(pk=alert_id).first()
    channel = AlertChannel.objects.filter(pk=channel_id).first()
    if alert is None or channel is None:
        return None
    row = _claim(alert, channel, attempt)
    if row is None:
        return None
    if not channel.enabled:
        _finish(row, False, "the channel was disabled before this attempt", final=True)
        return row
    sent, error = notify.send(
        channel.url, alert.title, alert.body, KIND[alert.phase], settings.FLEET_ALERT_TIMEOUT
    )
    final = sent or attempt > settings.FLEET_ALERT_RETRIES
    _finish(row, sent, error, final)
    if not final:
        queue.deliver(alert.pk, channel.pk, attempt + 1, after=rules.backoff(attempt))
    log.info(
        "alert %s to channel %s, attempt %d: %s%s",
        alert.pk,
        channel.name,
        attempt,
        "sent" if sent else "failed",
        "" if sent else f" ({error})",  # redacted by notify
    )
    return row


def retry_abandoned(now: datetime) -> None:
    """Fail the attempts a dead worker left "sending" and queue their next attempt: at least
    once, so a message the worker had sent just before it died goes out twice."""
    stale = Delivery.objects.filter(
        outcome=Delivery.Outcome.SENDING, started_at__lt=now - ABANDONED_AFTER
    )
    for row in stale.select_related("alert", "channel"):
        final = row.attempt > settings.FLEET_ALERT_RETRIES
        _finish(row, False, "the worker stopped during this attempt", final)
        if not final:
            queue.deliver(row.alert_id, row.channel_id, row.attempt + 1)


def _finish(row: Delivery, sent: bool, error: str, final: bool) -> None:
    row.outcome = Delivery.Outcome.SENT if sent else Delivery.Outcome.FAILED
    row.error = error
    row.final = final
    row.finished_at = timezone.now()
    row.save(update_fields=["outcome", "error", "final", "finished_at"])
    live.broadcast("delivery", row.pk)


def send_test(channel: AlertChannel) -> Delivery:
    """Send a test message to a channel now, and return its Delivery row (the outcome).

    Runs in the caller (a page or an API request), so the answer can show the outcome;
    FLEET_ALERT_TIMEOUT bounds the wait. Recorded like any other delivery.
    """
    now = timezone.now()
    title, body = messages.test(channel.name, now)
    alert = Alert.objects.create(phase=Alert.Phase.TEST, topics=[], title=title, body=body)
    row = Delivery.objects.create(alert=alert, channel=channel, attempt=1)
    sent, error = notify.send(channel.url, title, body, "info", settings.FLEET_ALERT_TIMEOUT)
    _finish(row, sent, error, final=True)
    return row
