"""Fleet's state: nodes (Docker hosts) and the events that record what happened to them."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from .validation import validate_dns_label, validate_endpoint, validate_labels, validate_pem


@dataclass(frozen=True)
class Actor:
    """Who caused a change: a user through some door, or the system itself."""

    name: str = "system"
    via: str = "system"

    @classmethod
    def of(cls, user, via):
        return cls(name=user.get_username(), via=via)


SYSTEM = Actor()


class Node(models.Model):
    """A Docker host that Fleet manages, with its last observed health."""

    class Availability(models.TextChoices):
        ACTIVE = "active"
        PAUSE = "pause"
        DRAIN = "drain"

    class Status(models.TextChoices):
        UNKNOWN = "unknown"
        READY = "ready"
        DOWN = "down"

    name = models.CharField(max_length=63, unique=True, validators=[validate_dns_label])
    endpoint = models.CharField(max_length=255, unique=True, validators=[validate_endpoint])
    tls_ca = models.TextField("TLS CA certificate", blank=True, validators=[validate_pem])
    tls_cert = models.TextField("TLS client certificate", blank=True, validators=[validate_pem])
    tls_key = models.TextField("TLS client key", blank=True, validators=[validate_pem])
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])
    availability = models.CharField(
        max_length=8, choices=Availability.choices, default=Availability.ACTIVE
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.UNKNOWN)
    engine_version = models.CharField(max_length=64, blank=True)
    cpus = models.PositiveIntegerField(null=True, blank=True)
    memory_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    containers_running = models.PositiveIntegerField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="Failed checks in a row.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        uses_tls = self.tls_ca or self.tls_cert or self.tls_key
        if uses_tls and not self.endpoint.startswith("tcp://"):
            errors["endpoint"] = "TLS certificates apply only to tcp:// endpoints."
        if bool(self.tls_cert) != bool(self.tls_key):
            errors["tls_key"] = "A TLS client certificate and its key go together."
        if errors:
            raise ValidationError(errors)

    @property
    def uses_tls(self):
        return bool(self.tls_cert or self.tls_ca)

    @property
    def schedulable(self):
        return self.status == self.Status.READY and self.availability == self.Availability.ACTIVE


def next_status(status, failures, threshold):
    """The status a node has after a check, given its failures in a row (0 = it answered)."""
    if failures == 0:
        return Node.Status.READY
    if failures >= threshold:
        return Node.Status.DOWN
    return status


class EventKind(models.TextChoices):
    NODE_REGISTERED = "node.registered"
    NODE_UPDATED = "node.updated"
    NODE_REMOVED = "node.removed"
    NODE_STATUS_CHANGED = "node.status_changed"
    NODE_AVAILABILITY_CHANGED = "node.availability_changed"


class EventQuerySet(models.QuerySet):
    def record(self, kind, *, actor=SYSTEM, node=None, old="", new="", reason=""):
        return self.create(
            kind=kind,
            node_name=getattr(node, "name", node or ""),
            old=old,
            new=new,
            reason=reason[:2000],
            actor=actor.name,
            via=actor.via,
        )


class Event(models.Model):
    """One thing that happened in the fleet: a transition or an action, with who caused it."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=64, choices=EventKind.choices, db_index=True)
    # Names, not foreign keys: the record outlives the node it speaks of.
    node_name = models.CharField("node", max_length=63, blank=True, db_index=True)
    old = models.CharField(max_length=255, blank=True)
    new = models.CharField(max_length=255, blank=True)
    reason = models.TextField(blank=True)
    actor = models.CharField(max_length=150, default="system", db_index=True)
    via = models.CharField(max_length=16, default="system")

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.kind} {self.node_name} {self.old}->{self.new}"
