"""Image checks: whether the tag a service runs now points at another digest in its registry."""

from django.db import models


class ImageCheck(models.Model):
    """The latest look at a service's image tag in its registry, and the update it found."""

    class Outcome(models.TextChoices):
        UP_TO_DATE = "up_to_date"
        UPDATE_AVAILABLE = "update_available"
        UNKNOWN = "unknown"  # the registry answered, but nothing ran to compare with
        FAILED = "failed"  # the registry (or every node asked) did not answer: see error

    service = models.OneToOneField(
        "Service", on_delete=models.CASCADE, primary_key=True, related_name="image_check"
    )
    image = models.CharField(max_length=255, blank=True, help_text="The tag checked.")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    error = models.TextField(blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    # When someone asked for a check now that has not finished yet.
    requested_at = models.DateTimeField(null=True, blank=True)
    registry_digest = models.CharField(max_length=80, blank=True)
    running_digests = models.JSONField(default=list, blank=True)
    # The newer digest on offer, and when the registry was first seen with it (its age).
    update_digest = models.CharField(max_length=80, blank=True)
    update_seen_at = models.DateTimeField(null=True, blank=True)
    # Each new digest is announced (an Event, so an alert) and deployed by itself once.
    announced_digest = models.CharField(max_length=80, blank=True)
    auto_deployed_digest = models.CharField(max_length=80, blank=True)

    def __str__(self):
        return f"{self.service_id}: {self.outcome or 'not checked'}"
