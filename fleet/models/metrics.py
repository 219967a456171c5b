"""Metrics: raw samples of replicas and nodes, their 5-minute rollups, and thresholds.

The layout is for volume: one narrow row per replica per sampling round (numbers
only, the time as epoch seconds), written in one bulk insert per node per round,
read by (service, time) or (node, time) ranges. A day of 1,000 replicas at 10 s
is 8.6 million rows; the rollups keep 288 rows per replica per day, and charts
of long ranges read only those. Times are integers so that bucketing by any step
is plain integer arithmetic in SQL, on SQLite and PostgreSQL alike.

Samples speak of nodes by id without a foreign key constraint: history outlives
a removed node, and beat's pruning deletes it with the rest.
"""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

ROLLUP_SECONDS = 300  # the rollups' bucket: five minutes


def _node_ref(related_name):
    return models.ForeignKey(
        "Node",
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name=related_name,
    )


class ReplicaSample(models.Model):
    """One replica's usage at one sampling round (rates over the time since the last one)."""

    t = models.BigIntegerField(help_text="Epoch seconds.")
    service = models.ForeignKey(
        "Service", on_delete=models.CASCADE, db_index=False, related_name="+"
    )
    slot = models.PositiveIntegerField()
    node = _node_ref("+")
    cpu = models.FloatField(help_text="Percent of one core.")
    memory = models.BigIntegerField(help_text="Bytes used, page cache not counted.")
    memory_limit = models.BigIntegerField(help_text="Bytes; the host's memory when unlimited.")
    net_rx = models.FloatField(help_text="Bytes received per second.")
    net_tx = models.FloatField(help_text="Bytes sent per second.")
    blk_read = models.FloatField(help_text="Bytes read from disk per second.")
    blk_write = models.FloatField(help_text="Bytes written to disk per second.")

    class Meta:
        indexes = [
            models.Index(fields=["service", "t"], name="replicasample_service_t"),
            models.Index(fields=["node", "t"], name="replicasample_node_t"),
            models.Index(fields=["t"], name="replicasample_t"),
        ]

    def __str__(self):
        return f"{self.service_id}.{self.slot} @{self.t}"


class NodeSample(models.Model):
    """One node at one sampling round: what Fleet's replicas there use in sum, and its engine."""

    t = models.BigIntegerField(help_text="Epoch seconds.")
    node = models.ForeignKey("Node", on_delete=models.CASCADE, db_index=False, related_name="+")
    cpu = models.FloatField(help_text="Percent of one core, summed over its replicas.")
    memory = models.BigIntegerField(help_text="Bytes used by its replicas.")
    memory_total = models.BigIntegerField(help_text="The host's memory, bytes.")
    cpus = models.PositiveIntegerField(default=0)
    containers = models.PositiveIntegerField(help_text="Running containers, Fleet's or not.")
    replicas = models.PositiveIntegerField(help_text="Fleet replicas sampled this round.")
    disk = models.BigIntegerField(null=True, help_text="The engine's disk use, bytes.")

    class Meta:
        indexes = [
            models.Index(fields=["node", "t"], name="nodesample_node_t"),
            models.Index(fields=["t"], name="nodesample_t"),
        ]

    def __str__(self):
        return f"node {self.node_id} @{self.t}"


class ReplicaRollup(models.Model):
    """A replica's samples of one 5-minute bucket: min, average and max."""

    bucket = models.BigIntegerField(help_text="Epoch seconds at the bucket's start.")
    service = models.ForeignKey(
        "Service", on_delete=models.CASCADE, db_index=False, related_name="+"
    )
    slot = models.PositiveIntegerField()
    node = _node_ref("+")
    samples = models.PositiveIntegerField()
    cpu_min = models.FloatField()
    cpu = models.FloatField(help_text="Average.")
    cpu_max = models.FloatField()
    memory_min = models.BigIntegerField()
    memory = models.BigIntegerField(help_text="Average.")
    memory_max = models.BigIntegerField()
    memory_limit = models.BigIntegerField()
    net_rx = models.FloatField(help_text="Average.")
    net_tx = models.FloatField(help_text="Average.")
    blk_read = models.FloatField(help_text="Average.")
    blk_write = models.FloatField(help_text="Average.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service", "bucket", "slot"], name="one_rollup_per_slot_and_bucket"
            )
        ]
        indexes = [
            models.Index(fields=["node", "bucket"], name="replicarollup_node_bucket"),
            models.Index(fields=["bucket"], name="replicarollup_bucket"),
        ]

    def __str__(self):
        return f"{self.service_id}.{self.slot} @{self.bucket}"


class NodeRollup(models.Model):
    """A node's samples of one 5-minute bucket: min, average and max."""

    bucket = models.BigIntegerField(help_text="Epoch seconds at the bucket's start.")
    node = models.ForeignKey("Node", on_delete=models.CASCADE, db_index=False, related_name="+")
    samples = models.PositiveIntegerField()
    cpu_min = models.FloatField()
    cpu = models.FloatField(help_text="Average.")
    cpu_max = models.FloatField()
    memory_min = models.BigIntegerField()
    memory = models.BigIntegerField(help_text="Average.")
    memory_max = models.BigIntegerField()
    memory_total = models.BigIntegerField()
    cpus = models.PositiveIntegerField(default=0)
    containers = models.PositiveIntegerField(help_text="Most seen.")
    replicas = models.PositiveIntegerField(help_text="Most seen.")
    disk = models.BigIntegerField(null=True, help_text="Most seen.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["node", "bucket"], name="one_rollup_per_node_and_bucket"
            )
        ]
        indexes = [models.Index(fields=["bucket"], name="noderollup_bucket")]

    def __str__(self):
        return f"node {self.node_id} @{self.bucket}"


class MetricThreshold(models.Model):
    """A rule on a service or a node: "CPU (or memory) above X% for Y minutes".

    For a service, the value is the average over its running replicas: CPU as a percent
    of one core, memory as a percent of each replica's limit. For a node, CPU is a
    percent of all its cores and memory a percent of its memory, both for what Fleet's
    replicas there use. `exceeded_since` is set while the rule holds: the metric
    events are recorded when it is set and when it is cleared.
    """

    class Metric(models.TextChoices):
        CPU = "cpu"
        MEMORY = "memory"

    service = models.ForeignKey(
        "Service", null=True, blank=True, on_delete=models.CASCADE, related_name="thresholds"
    )
    node = models.ForeignKey(
        "Node", null=True, blank=True, on_delete=models.CASCADE, related_name="thresholds"
    )
    metric = models.CharField(max_length=8, choices=Metric.choices)
    above = models.FloatField(
        validators=[MinValueValidator(0.1), MaxValueValidator(10_000)],
        help_text="Percent: of one core (a service's CPU), of all cores (a node's CPU), "
        "of the limit (memory).",
    )
    minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(1440)],
        help_text="How long the value must stay above before it counts.",
    )
    enabled = models.BooleanField(default=True)
    exceeded_since = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(service__isnull=True, node__isnull=False)
                | models.Q(service__isnull=False, node__isnull=True),
                name="threshold_on_a_service_or_a_node",
            )
        ]

    def __str__(self):
        return f"{self.subject_name}: {self.describe()}"

    @property
    def subject_name(self):
        return self.service.name if self.service_id else self.node.name

    def describe(self):
        what = "CPU" if self.metric == self.Metric.CPU else "memory"
        return f"{what} above {self.above:g}% for {self.minutes} min"

    def clean(self):
        if bool(self.service_id) == bool(self.node_id):
            raise ValidationError("A threshold applies to one service or one node: name one.")
        if self.metric == self.Metric.MEMORY and self.above is not None and self.above > 100:
            raise ValidationError({"above": "Memory cannot be above 100% of its limit."})
