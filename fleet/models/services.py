"""Services: the desired spec (Service, Deployment) and what runs (Replica)."""

from django.db import models
from django.utils import timezone

from fleet.models.validation import validate_dns_label


class ServiceQuerySet(models.QuerySet):
    def with_counts(self):
        """Services with their running and serving replica counts, in one query, by name
        (a query that groups drops Meta.ordering, so it is asked for again here)."""
        running = models.Q(replica_set__state=Replica.State.RUNNING)
        serving = running & models.Q(replica_set__health__in=Replica.SERVING_HEALTH)
        return (
            self.select_related("current_deployment", "image_check")
            .annotate(
                running_replicas=models.Count("replica_set", filter=running),
                healthy_replicas=models.Count("replica_set", filter=serving),
            )
            .order_by(*self.query.order_by or Service._meta.ordering)
        )


class Service(models.Model):
    """An image run as N replicas across nodes; its spec is that of its current deployment."""

    name = models.CharField(max_length=63, unique=True, validators=[validate_dns_label])
    replicas = models.PositiveIntegerField(default=1)
    current_deployment = models.ForeignKey(
        "Deployment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deleting = models.BooleanField(default=False)
    # Bumped on every change of desired state, so converge knows when it has caught up.
    generation = models.PositiveIntegerField(default=0)
    # Who is converging this service right now, and until when the claim holds.
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ServiceQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def spec(self):
        return self.current_deployment.spec if self.current_deployment else {}

    @property
    def status(self):
        """One word for where the service stands, from its deployment and serving replicas.

        Reads the count with_counts() annotates; a service loaded without it counts once.
        """
        target = self.current_deployment
        if self.deleting:
            return "deleting"
        if target is None:
            return "new"
        if target.status in (Deployment.Status.PENDING, Deployment.Status.RUNNING):
            return "deploying"
        failed = target.status == Deployment.Status.FAILED
        if failed and target.spec["update"]["failure_action"] == "pause":
            return "paused"
        serving = getattr(self, "healthy_replicas", None)
        if serving is None:
            serving = sum(r.serving for r in self.replica_set.all())
        if serving == self.replicas:
            return "running"
        return "failed" if failed else "degraded"


class DeploymentQuerySet(models.QuerySet):
    def rollback_target(self, service, before):
        """The revision to go back to: the newest earlier one that did not fail by itself.

        That is one that succeeded, or one that a newer deploy superseded while it
        was still rolling out (its replicas were fine; it just had not finished).
        """
        good = models.Q(status=Deployment.Status.SUCCEEDED) | models.Q(superseded=True)
        earlier = self.filter(good, service=service, revision__lt=before.revision)
        return earlier.order_by("-revision").first()


class Deployment(models.Model):
    """An immutable revision of a service's spec, and how its rollout went."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        ROLLED_BACK = "rolled_back"

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="deployments")
    revision = models.PositiveIntegerField()
    spec = models.JSONField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent of slots updated.")
    reason = models.TextField(blank=True)
    superseded = models.BooleanField(default=False, help_text="Replaced before it finished.")
    actor = models.CharField(max_length=150, default="system")
    via = models.CharField(max_length=16, default="system")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        ordering = ["service", "-revision"]
        constraints = [
            models.UniqueConstraint(fields=["service", "revision"], name="one_revision_number")
        ]

    def __str__(self):
        return f"{self.service.name} rev {self.revision}"

    def resume(self):
        """Make a superseded revision the one rolling out again (it is a rollback's target)."""
        if self.superseded:
            Deployment.objects.filter(pk=self.pk).update(
                status=Deployment.Status.RUNNING,
                superseded=False,
                reason="resumed by a rollback",
                finished_at=None,
            )

    @property
    def finished(self):
        return self.status not in (self.Status.PENDING, self.Status.RUNNING)


class Replica(models.Model):
    """One container of a service in one slot: where it runs and what Docker says of it."""

    class State(models.TextChoices):
        PENDING = "pending"  # row made, container not (yet) created
        RUNNING = "running"
        EXITED = "exited"
        FAILED = "failed"  # could not be created: image pull, bad config
        MISSING = "missing"  # its container or its node is gone

    class Health(models.TextChoices):
        NONE = "none"
        STARTING = "starting"
        HEALTHY = "healthy"
        UNHEALTHY = "unhealthy"

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="replica_set")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="replica_set")
    slot = models.PositiveIntegerField()
    node = models.ForeignKey(
        "Node", null=True, blank=True, on_delete=models.SET_NULL, related_name="replica_set"
    )
    container_id = models.CharField(max_length=64, blank=True, db_index=True)
    container_name = models.CharField(max_length=128, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    health = models.CharField(max_length=9, choices=Health.choices, default=Health.NONE)
    exit_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    host_ports = models.JSONField(default=dict, blank=True)
    restarts = models.PositiveIntegerField(default=0)
    restart_requested = models.BooleanField(default=False)
    retry_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Since when it is serving (running, and healthy where checked): the monitor clock.
    ready_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When what the row says was seen: an older observation never overwrites a newer one.
    observed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["service", "slot", "-deployment__revision"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "slot", "deployment"], name="one_replica_per_slot_and_revision"
            )
        ]

    def __str__(self):
        return f"{self.service.name}.{self.slot}"

    # Health that lets a running replica serve: none checked, or checked and healthy.
    SERVING_HEALTH = (Health.NONE, Health.HEALTHY)

    @property
    def serving(self):
        """Running, and healthy where a healthcheck is set."""
        return self.state == self.State.RUNNING and self.health in self.SERVING_HEALTH
