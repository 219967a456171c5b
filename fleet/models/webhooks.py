"""Deploy webhooks: a secret URL per webhook that deploys its service (fleet.services.webhooks)."""

from django.db import models
from django.utils import timezone

from fleet.models.services import Service


class Webhook(models.Model):
    """A named secret that lets a caller without a login (a CI pipeline) deploy one service.

    Only the SHA-256 of the secret is kept, so nobody, an admin included, can read it back;
    it is shown once, when it is made or rotated. The rate-limit window lives on the row so
    that every web process counts against the same budget (see fleet.services.webhooks.claim).
    """

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="webhooks")
    name = models.CharField(max_length=64)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, default="system")
    rotated_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # The current rate-limit window: when it began and how many calls it has taken.
    window_started_at = models.DateTimeField(null=True, blank=True)
    window_calls = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["service__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["service", "name"], name="webhook_name_per_service")
        ]

    def __str__(self):
        return f"{self.name} ({self.service.name})"

    @property
    def actor_name(self):
        """How Events and deployments name this webhook as the one who acted."""
        return f"webhook:{self.name}"
