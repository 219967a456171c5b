"""Nodes: the Docker hosts Fleet manages, with their last observed health.

Liveness is a matter of time, not of probe count: a node that stops answering its
pings is `unreachable` (shown, nothing moved) and `down` (its replicas move) only
once it has not answered for FLEET_NODE_DOWN_AFTER seconds.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from fleet.access.sealing import SealedTextField
from fleet.engine import EngineError, ssh_keys, versions
from fleet.models.validation import (
    validate_certificate,
    validate_dns_label,
    validate_endpoint,
    validate_key_pair,
    validate_labels,
    validate_private_key,
    validate_ssh_host_key,
    validate_ssh_key,
)

PLAIN_TCP = (
    "A tcp:// endpoint without TLS lets anyone who reaches that port run containers as root "
    "on the host. Give the engine's CA certificate (tls_ca) and a client certificate and key "
    "(tls_cert, tls_key; Docker's TLS port is 2376), or set FLEET_ALLOW_PLAIN_TCP=1 to accept "
    "nodes on plain TCP."
)


class Node(models.Model):
    """A Docker host that Fleet manages, with its last observed health."""

    class Availability(models.TextChoices):
        ACTIVE = "active"
        PAUSE = "pause"
        DRAIN = "drain"

    class Status(models.TextChoices):
        UNKNOWN = "unknown"
        READY = "ready"
        UNREACHABLE = "unreachable"
        DOWN = "down"

    name = models.CharField(max_length=63, unique=True, validators=[validate_dns_label])
    endpoint = models.CharField(max_length=255, unique=True, validators=[validate_endpoint])
    tls_ca = models.TextField("TLS CA certificate", blank=True, validators=[validate_certificate])
    tls_cert = models.TextField(
        "TLS client certificate", blank=True, validators=[validate_certificate]
    )
    # Sealed at rest like services' secrets; open only in memory.
    tls_key = SealedTextField("TLS client key", blank=True, validators=[validate_private_key])
    # An ssh:// node: the private key Fleet logs in with (sealed, like the TLS key), and the
    # host's public key, pinned; empty until the first connection presents one (then kept).
    ssh_key = SealedTextField("SSH private key", blank=True, validators=[validate_ssh_key])
    ssh_host_key = models.TextField(
        "SSH host key",
        blank=True,
        validators=[validate_ssh_host_key],
        help_text="The host's public key, one line (ssh-keyscan prints it). Left empty, "
        "the key the host presents first is trusted and kept.",
    )
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])
    availability = models.CharField(
        max_length=8, choices=Availability.choices, default=Availability.ACTIVE
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNKNOWN)
    engine_version = models.CharField(max_length=64, blank=True)
    api_version = models.CharField(
        "engine API version",
        max_length=16,
        blank=True,
        help_text="The newest Docker Engine API version the engine speaks.",
    )
    # What the engine says of its host (`docker info`): placement may use os and arch.
    # HOST_FACTS names them for the API and the admin.
    os = models.CharField("OS type", max_length=16, blank=True)
    arch = models.CharField("architecture", max_length=32, blank=True)
    operating_system = models.CharField(max_length=128, blank=True)
    kernel_version = models.CharField(max_length=128, blank=True)
    storage_driver = models.CharField(max_length=64, blank=True)
    cgroup_version = models.CharField(max_length=8, blank=True)
    cpus = models.PositiveIntegerField(null=True, blank=True)
    memory_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    containers_running = models.PositiveIntegerField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="Failed pings in a row.")
    unreachable_since = models.DateTimeField(
        null=True, blank=True, help_text="When the first unanswered ping was sent."
    )
    damped = models.BooleanField(
        default=False,
        help_text="Unreachable while most nodes are: kept from going down until that ends.",
    )
    held_until = models.DateTimeField(
        null=True, blank=True, help_text="Takes no new replicas until then (it flapped)."
    )
    hold_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        tcp = self.endpoint.startswith("tcp://")
        if (self.tls_ca or self.tls_cert or self.tls_key) and not tcp:
            errors["endpoint"] = "TLS certificates apply only to tcp:// endpoints."
        elif tcp and not self.tls_ca and not settings.FLEET_ALLOW_PLAIN_TCP:
            errors["endpoint"] = PLAIN_TCP
        if bool(self.tls_cert) != bool(self.tls_key):
            errors["tls_key"] = "A TLS client certificate and its key go together."
        elif self.tls_cert:
            try:
                validate_key_pair(self.tls_cert, self.tls_key)
            except ValidationError as exc:
                errors["tls_key"] = exc.messages[0]
        if (self.tls_cert or self.tls_key) and not self.tls_ca:
            # Fleet never speaks TLS to an engine it has not verified.
            errors["tls_ca"] = (
                "A client certificate needs the CA certificate that signed the engine's "
                "certificate: Fleet never uses TLS without verifying the server."
            )
        for field, error in self._ssh_errors().items():
            errors.setdefault(field, error)
        if errors:
            raise ValidationError(errors)

    def _ssh_errors(self):
        """What is wrong with the node's SSH fields, by field; the host key made one line."""
        if not self.endpoint.startswith("ssh://"):
            return {
                field: "SSH keys apply only to ssh:// endpoints."
                for field in ("ssh_key", "ssh_host_key")
                if getattr(self, field)
            }
        errors = {}
        if "@" not in self.endpoint.split("//", 1)[1]:
            errors["endpoint"] = (
                "An ssh:// endpoint names the user Fleet logs in as: ssh://USER@HOST[:PORT]."
            )
        if not self.ssh_key:
            errors["ssh_key"] = (
                "An ssh:// endpoint needs the private key Fleet logs in with (its public "
                "key in the user's authorized_keys on the host)."
            )
        try:
            if self.ssh_host_key:
                self.ssh_host_key = ssh_keys.host_key(self.ssh_host_key).line
        except ValueError:
            pass  # its validator said why
        return errors

    @property
    def uses_ssh(self):
        return self.endpoint.startswith("ssh://")

    @property
    def ssh_host_fingerprint(self) -> str:
        """The pinned host key's SHA256 fingerprint ("" when none is pinned)."""
        try:
            return ssh_keys.host_key(self.ssh_host_key).fingerprint if self.ssh_host_key else ""
        except ValueError:
            return ""

    @property
    def uses_tls(self):
        return bool(self.tls_cert or self.tls_ca)

    @property
    def api_spoken(self) -> str:
        """The Engine API version Fleet speaks with the engine ("" before it was seen)."""
        try:
            return versions.spoken(self.api_version) if self.api_version else ""
        except EngineError:
            return ""

    @property
    def held(self):
        """Whether the node is held out of placement after flapping."""
        return self.held_until is not None and self.held_until > timezone.now()

    @property
    def insecure(self) -> bool:
        """Reached over plain TCP: whoever reaches the port controls the engine."""
        return self.endpoint.startswith("tcp://") and not self.tls_ca

    @property
    def schedulable(self):
        return (
            self.status == self.Status.READY
            and self.availability == self.Availability.ACTIVE
            and not self.held
        )


# What each engine says of its host, in the order the API and the admin show it.
HOST_FACTS = (
    "os",
    "arch",
    "operating_system",
    "kernel_version",
    "storage_driver",
    "cgroup_version",
)


def next_status(status, since, answered, sent, now, down_after):
    """(status, unreachable since) after a ping sent at `sent` was answered, or was not by `now`.

    One unanswered ping makes a node unreachable, since it was sent; the node is down
    only once its pings have gone unanswered for `down_after` seconds. One answer makes
    it ready.
    """
    if answered:
        return Node.Status.READY, None
    if status == Node.Status.DOWN:
        return status, since or sent
    since = since if status == Node.Status.UNREACHABLE and since else sent
    if now - since >= timedelta(seconds=down_after):
        return Node.Status.DOWN, since
    return Node.Status.UNREACHABLE, since
