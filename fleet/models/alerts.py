"""Alerts: where to send them (AlertChannel), what is wrong (Incident), each message (Alert)
and each try to deliver one to one channel (Delivery).

Incidents are derived from Event rows (fleet.alerts): Events stay the one record of
what happened; these rows say who was told about it, and when.
"""

from django.db import models
from django.utils import timezone

from fleet.access.sealing import SealedTextField


class Topic(models.TextChoices):
    """What a channel may choose to receive: each alert and resolution carries one."""

    NODE_DOWN = "node.down"
    NODE_UP = "node.up"
    SERVICE_DEGRADED = "service.degraded"
    SERVICE_RECOVERED = "service.recovered"
    REPLICA_CRASH_LOOPING = "replica.crash_looping"
    DEPLOYMENT_FAILED = "deployment.failed"
    DEPLOYMENT_ROLLED_BACK = "deployment.rolled_back"
    DEPLOYMENT_SUCCEEDED = "deployment.succeeded"
    METRIC_THRESHOLD = "metric.threshold"
    IMAGE_UPDATE_AVAILABLE = "image.update_available"


def default_topics():
    """What a new channel receives unless told otherwise: every problem and its end, and
    newer images on offer; not the notices of deployments that went well."""
    return [t for t in Topic.values if t != Topic.DEPLOYMENT_SUCCEEDED]


class AlertChannel(models.Model):
    """Somewhere alerts go: an Apprise URL (sealed at rest, never shown whole) and its topics."""

    name = models.CharField(max_length=63, unique=True)
    # Holds tokens and passwords: sealed in the database, redacted wherever it is shown.
    url = SealedTextField("Apprise URL")
    events = models.JSONField(default=default_topics, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def redacted_url(self):
        from fleet.notify import redact

        return redact(self.url)

    def wants(self, topics):
        return self.enabled and any(topic in self.events for topic in topics)


class Incident(models.Model):
    """One thing wrong with one subject, from the first alert to its one resolution.

    pending: seen, not yet long enough to tell anyone (a service degraded under
    FLEET_ALERT_DEGRADED_AFTER); open: alerted; resolving: cleared, waiting out the
    quiet period (a recurrence sends it back to open, silently); resolved: told so.
    """

    class Kind(models.TextChoices):
        NODE_DOWN = "node.down"
        SERVICE_DEGRADED = "service.degraded"
        CRASH_LOOPING = "replica.crash_looping"
        DEPLOYMENT_FAILED = "deployment.failed"
        METRIC_THRESHOLD = "metric.threshold"

    class State(models.TextChoices):
        PENDING = "pending"
        OPEN = "open"
        RESOLVING = "resolving"
        RESOLVED = "resolved"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    # What it is about: a node's or a service's name, or "<service or node>/<rule>".
    subject = models.CharField(max_length=255)
    node_name = models.CharField("node", max_length=63, blank=True)
    service_name = models.CharField("service", max_length=63, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    summary = models.TextField(blank=True, help_text="What was last said of it.")
    opened_at = models.DateTimeField(default=timezone.now)
    # How often it happened (a node that flaps is one incident with many occurrences).
    occurrences = models.PositiveIntegerField(default=1)
    last_seen_at = models.DateTimeField(default=timezone.now)
    clearing_since = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["state", "kind"], name="incident_state_kind")]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject"],
                condition=~models.Q(state="resolved"),
                name="one_live_incident_per_subject",
            )
        ]

    def __str__(self):
        return f"{self.kind} {self.subject} ({self.state})"

    @property
    def live(self):
        return self.state != self.State.RESOLVED


class Alert(models.Model):
    """One message about an incident (its opening or its resolution) or a notice."""

    class Phase(models.TextChoices):
        OPENED = "opened"
        RESOLVED = "resolved"
        NOTICE = "notice"  # tells, opens nothing (a deployment that succeeded)
        TEST = "test"

    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    phase = models.CharField(max_length=10, choices=Phase.choices)
    # The channels that receive it are those whose events include one of these.
    topics = models.JSONField(default=list)
    title = models.CharField(max_length=255)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.title


class Delivery(models.Model):
    """One attempt to send one alert to one channel, and how it went."""

    class Outcome(models.TextChoices):
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"  # and retried later, unless `final`

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveSmallIntegerField(default=1)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.SENDING)
    final = models.BooleanField(default=False, help_text="No further attempt follows.")
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "channel", "attempt"], name="one_row_per_delivery_attempt"
            )
        ]

    def __str__(self):
        return f"{self.alert} -> {self.channel} #{self.attempt}: {self.outcome}"


class PendingDelivery(models.Model):
    """An alert owed to one channel: its next attempt, and when the broker gets it (again).

    Made in the transaction that makes the alert, and gone once an attempt ends it (sent or
    given up), so a broker that was away when the alert was made loses nothing: the sweep
    hands over every row whose `due_at` has come.
    """

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="pending")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="pending")
    attempt = models.PositiveSmallIntegerField(default=1)
    # When the sweep queues this attempt: at once, after a retry's backoff, or again if a
    # task handed over at `queued_at` has not ended it by then.
    due_at = models.DateTimeField(default=timezone.now, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name_plural = "pending deliveries"
        constraints = [
            models.UniqueConstraint(fields=["alert", "channel"], name="one_pending_per_channel")
        ]

    def __str__(self):
        return f"{self.alert} -> {self.channel} #{self.attempt}, due {self.due_at:%H:%M:%S}"


class AlertCursor(models.Model):
    """How far the alert processor has read the Event rows (one row)."""

    last_event_id = models.BigIntegerField(default=0)
    # A gap right after last_event_id (PostgreSQL: an id taken by a transaction not yet
    # committed) and when the processor first saw it: it waits from then.
    gap_after = models.BigIntegerField(null=True, blank=True)
    gap_seen_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"events read up to {self.last_event_id}"
