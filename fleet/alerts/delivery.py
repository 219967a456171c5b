"""Delivery: each alert owed to each channel is a row (PendingDelivery) until an attempt
ends it; each attempt is a Celery task and a Delivery row.

The rows are made in the transaction that makes the alert (the outbox) and handed to
the broker once it commits; a broker that is away loses nothing, since the sweep (beat,
every FLEET_ALERT_INTERVAL) hands over every row whose time has come: never queued, a
retry whose backoff is over, or a task queued long ago that never ran.

A channel that is down or slow holds only its own task, FLEET_ALERT_TIMEOUT seconds
per attempt at most; a failed attempt makes the next one due after a backoff (2 s, 4 s,
8 s ...), FLEET_ALERT_RETRIES times, then gives up and says so in its row. A task
run twice (a worker died and the broker gave it again, or the sweep handed it over
again) finds its attempt's row taken, or the alert already sent, and does nothing.
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from fleet import live, notify, queue
from fleet.alerts import messages, rules
from fleet.models.alerts import Alert, AlertChannel, Delivery, PendingDelivery

log = logging.getLogger(__name__)

# A delivery task is killed at 90 s (its time limit): an attempt still "sending" after this
# was abandoned by a worker that died, and its task, given again, finds the row taken.
ABANDONED_AFTER = timedelta(seconds=120)
# A delivery handed to the broker and not ended by then is handed over again: its message
# may be gone (a broker that restarted without it). A second copy of a task that did run
# finds its attempt taken and does nothing.
HAND_OVER_AGAIN_AFTER = ABANDONED_AFTER
SWEEP_BATCH = 200  # rows handed over per sweep; more wait for the next

KIND: dict[str, str] = {
    Alert.Phase.OPENED: "failure",
    Alert.Phase.RESOLVED: "success",
    Alert.Phase.NOTICE: "info",
    Alert.Phase.TEST: "info",
}


def owe(alert: Alert, channels: Iterable[AlertChannel]) -> None:
    """Record that the alert is owed to each channel, in the caller's transaction, and hand
    the deliveries to the broker once it commits."""
    PendingDelivery.objects.bulk_create(
        [PendingDelivery(alert=alert, channel=channel) for channel in channels]
    )
    transaction.on_commit(lambda: _hand_over(PendingDelivery.objects.filter(alert=alert)))


def sweep(now: datetime | None = None) -> int:
    """Hand over every delivery owed whose time has come; return how many were queued."""
    due = PendingDelivery.objects.filter(due_at__lte=now or timezone.now())
    return _hand_over(due.order_by("due_at", "pk")[:SWEEP_BATCH])


def _hand_over(rows: Iterable[PendingDelivery]) -> int:
    """Queue each row's attempt; stop at the first the broker refuses (it is away: the next
    sweep tries again). A row whose attempt moved on meanwhile is left as it is now."""
    queued = 0
    for row in list(rows):
        if not queue.deliver_now(row.alert_id, row.channel_id, row.attempt):
            break
        now = timezone.now()
        PendingDelivery.objects.filter(pk=row.pk, attempt=row.attempt).update(
            queued_at=now, due_at=now + HAND_OVER_AGAIN_AFTER
        )
        queued += 1
    return queued


def _claim(alert: Alert, channel: AlertChannel, attempt: int) -> Delivery | None:
    """This attempt's row, or None when it is someone else's or the alert already went."""
    sent = Delivery.objects.filter(alert=alert, channel=channel, outcome=Delivery.Outcome.SENT)
    if sent.exists():
        PendingDelivery.objects.filter(alert=alert, channel=channel).delete()
        return None
    try:
        with transaction.atomic():
            return Delivery.objects.create(alert=alert, channel=channel, attempt=attempt)
    except IntegrityError:
        return None


def deliver(alert_id: int, channel_id: int, attempt: int = 1) -> Delivery | None:
    """Send one alert to one channel (one attempt); make the next attempt due if it failed."""
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
    _finish(row, sent, error, final, retry_in=rules.backoff(attempt))
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
    """Fail the attempts a dead worker left "sending" and make their next attempt due: at
    least once, so a message the worker had sent just before it died goes out twice."""
    stale = Delivery.objects.filter(
        outcome=Delivery.Outcome.SENDING, started_at__lt=now - ABANDONED_AFTER
    )
    for row in stale.select_related("alert", "channel"):
        final = row.attempt > settings.FLEET_ALERT_RETRIES
        _finish(row, False, "the worker stopped during this attempt", final)


def _finish(row: Delivery, sent: bool, error: str, final: bool, retry_in: float = 0.0) -> None:
    """Record how the attempt went; the alert is owed no more (final), or owed its next
    attempt `retry_in` seconds from now."""
    now = timezone.now()
    row.outcome = Delivery.Outcome.SENT if sent else Delivery.Outcome.FAILED
    row.error = error
    row.final = final
    row.finished_at = now
    with transaction.atomic():
        row.save(update_fields=["outcome", "error", "final", "finished_at"])
        owed = PendingDelivery.objects.filter(alert_id=row.alert_id, channel_id=row.channel_id)
        if final:
            owed.delete()
        else:
            PendingDelivery.objects.update_or_create(
                alert_id=row.alert_id,
                channel_id=row.channel_id,
                defaults={
                    "attempt": row.attempt + 1,
                    "due_at": now + timedelta(seconds=retry_in),
                    "queued_at": None,
                },
            )
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
