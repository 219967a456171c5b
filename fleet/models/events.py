"""Events: every change that matters, with who caused it; the feed, the audit log and alerts."""

from dataclasses import dataclass

from django.db import models
from django.utils import timezone

from fleet.access.addresses import client_address


@dataclass(frozen=True)
class Actor:
    """Who caused a change: a user through some door, or the system itself."""

    name: str = "system"
    via: str = "system"
    address: str = ""  # where a person's request came from; none for Fleet's own work

    @classmethod
    def of(cls, user, via, address=""):
        return cls(name=user.get_username(), via=via, address=address)

    @classmethod
    def of_request(cls, request, door):
        """The user behind a request through a door ("web", "api", "admin"), and the client's
        address; an API request authenticated by a token rather than a session comes "via"
        "token"."""
        token = door == "api" and getattr(request, "auth", None) is not None
        return cls.of(request.user, "token" if token else door, client_address(request))


SYSTEM = Actor()


class EventKind(models.TextChoices):
    NODE_REGISTERED = "node.registered"
    NODE_UPDATED = "node.updated"
    NODE_REMOVED = "node.removed"
    NODE_STATUS_CHANGED = "node.status_changed"
    NODE_AVAILABILITY_CHANGED = "node.availability_changed"
    SERVICE_CREATED = "service.created"
    SERVICE_SCALED = "service.scaled"
    SERVICE_DELETED = "service.deleted"
    DEPLOYMENT_CREATED = "deployment.created"
    DEPLOYMENT_SUCCEEDED = "deployment.succeeded"
    DEPLOYMENT_FAILED = "deployment.failed"
    DEPLOYMENT_ROLLED_BACK = "deployment.rolled_back"
    REPLICA_STARTED = "replica.started"
    REPLICA_DIED = "replica.died"
    REPLICA_UNHEALTHY = "replica.unhealthy"
    REPLICA_RESCHEDULED = "replica.rescheduled"
    REPLICA_CRASH_LOOPING = "replica.crash_looping"
    REPLICA_REMOVED = "replica.removed"
    REPLICA_RESTART_REQUESTED = "replica.restart_requested"
    PLACEMENT_FAILED = "placement.failed"
    USER_ROLE_CHANGED = "user.role_changed"
    USER_TOKEN_CREATED = "user.token_created"
    USER_TOKEN_REVOKED = "user.token_revoked"
    ALERT_CHANNEL_CREATED = "alert_channel.created"
    ALERT_CHANNEL_CHANGED = "alert_channel.changed"
    ALERT_CHANNEL_DELETED = "alert_channel.deleted"
    # Recorded by the metrics when a rule's threshold is crossed and cleared: the event
    # names its service or node, `new` the rule; alerts open and resolve an incident from it.
    METRIC_THRESHOLD_EXCEEDED = "metric.threshold_exceeded"
    METRIC_THRESHOLD_CLEARED = "metric.threshold_cleared"
    REGISTRY_ADDED = "registry.added"
    REGISTRY_CHANGED = "registry.changed"
    REGISTRY_REMOVED = "registry.removed"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_ROTATED = "webhook.rotated"
    WEBHOOK_REVOKED = "webhook.revoked"
    # The registry has a newer digest for a service's tag (once per digest): image_updates.
    SERVICE_IMAGE_UPDATE_AVAILABLE = "service.image_update_available"
    # A terminal on a replica (fleet.console.sessions): who opened it, and when and how it ended.
    CONSOLE_OPENED = "console.opened"
    CONSOLE_CLOSED = "console.closed"


# How many of the newest events a feed looks at when it folds repeats together.
FOLD_WINDOW = 200


class EventQuerySet(models.QuerySet):
    def folded(self, limit=20):
        """The newest events with repeats folded into the newest of each: a summary, not a log.

        Events alike in all but their time (a slot that keeps dying, a node that keeps
        flapping) count as one line, each carrying `repeats` (how many) and `first_at`
        (when the oldest of them happened), at the place of its newest. Returns at
        most `limit` lines, newest first, from the newest FOLD_WINDOW events.
        """
        lines = {}
        for event in self.order_by("-created_at", "-id")[:FOLD_WINDOW]:
            line = lines.get(event.fold_key)
            if line is None:
                if len(lines) == limit:
                    continue
                event.repeats, event.first_at = 1, event.created_at
                lines[event.fold_key] = event
            else:
                line.repeats += 1
                line.first_at = event.created_at
        return list(lines.values())

    def record(self, kind, *, actor=SYSTEM, node=None, service=None, old="", new="", reason=""):
        """Write an event and show it on every open dashboard once it is committed."""
        from fleet import live

        event = self.create(
            kind=kind,
            node_name=getattr(node, "name", node or ""),
            service_name=getattr(service, "name", service or ""),
            old=old,
            new=new,
            reason=reason[:2000],
            actor=actor.name,
            via=actor.via,
            address=actor.address or None,
        )
        live.broadcast("event", event.pk)
        return event


class Event(models.Model):
    """One thing that happened in the fleet: a transition or an action, with who caused it."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=64, choices=EventKind.choices, db_index=True)
    # Names, not foreign keys: the record outlives the node it speaks of.
    node_name = models.CharField("node", max_length=63, blank=True, db_index=True)
    service_name = models.CharField("service", max_length=63, blank=True, db_index=True)
    old = models.CharField(max_length=255, blank=True)
    new = models.CharField(max_length=255, blank=True)
    reason = models.TextField(blank=True)
    actor = models.CharField(max_length=150, default="system", db_index=True)
    via = models.CharField(max_length=16, default="system")
    # The client's address (through trusted proxies only: fleet.access.addresses).
    address = models.GenericIPAddressField(null=True, blank=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.kind} {self.service_name or self.node_name} {self.old}->{self.new}"

    @property
    def fold_key(self):
        """Events with the same key say the same thing: a feed shows them as one line."""
        return "|".join(
            (self.kind, self.service_name, self.node_name, self.old, self.new, self.reason)
        )

    @property
    def repeat_span(self):
        """How long a folded line's repeats took, worded as the page's script words it."""
        minutes = (self.created_at - getattr(self, "first_at", self.created_at)).total_seconds()
        minutes /= 60
        return f"{int(minutes + 0.5)} min" if minutes >= 1 else "under a minute"
