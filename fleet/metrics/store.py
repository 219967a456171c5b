"""Writing samples, rolling them up into 5-minute buckets, and pruning both (beat's work).

A round of one node is one bulk insert of its replicas' rows plus one node row,
and one live message. Rollups are made per bucket once the bucket is over (and a
round's grace after), from the raw rows by one grouped query per table; a bucket
already rolled up is skipped by the unique constraints, so a rollup that runs
twice writes nothing twice.
"""

import time

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Count, Max, Min

from fleet import live
from fleet.models import Node, NodeRollup, NodeSample, Replica, ReplicaRollup, ReplicaSample
from fleet.models.metrics import ROLLUP_SECONDS

LIVE_KIND = "metrics"


def running_replicas(node_id):
    """The node's replicas that have a running container: what a round samples."""
    rows = Replica.objects.filter(node_id=node_id, state=Replica.State.RUNNING)
    return list(rows.exclude(container_id="").values("id", "service_id", "slot", "container_id"))


def write_round(node_id, t, rows, disk=None, complete=True):
    """Store one round of a node: `rows` are (replica values, Usage) pairs.

    The node's own row sums its replicas; a round cut short by a silent engine has
    no node row, since a partial sum would read as a drop.
    """
    samples = [
        ReplicaSample(
            t=t,
            service_id=replica["service_id"],
            slot=replica["slot"],
            node_id=node_id,
            cpu=use.cpu,
            memory=use.memory,
            memory_limit=use.memory_limit,
            net_rx=use.net_rx,
            net_tx=use.net_tx,
            blk_read=use.blk_read,
            blk_write=use.blk_write,
        )
        for replica, use in rows
    ]
    node = Node.objects.filter(pk=node_id).values(
        "name", "memory_bytes", "cpus", "containers_running"
    )
    node = node.first()
    if node is None:
        return
    with transaction.atomic():
        ReplicaSample.objects.bulk_create(samples)
        if complete:
            NodeSample.objects.create(
                t=t,
                node_id=node_id,
                cpu=round(sum(s.cpu for s in samples), 3),
                memory=sum(s.memory for s in samples),
                memory_total=node["memory_bytes"] or 0,
                cpus=node["cpus"] or 0,
                containers=node["containers_running"] or 0,
                replicas=len(samples),
                disk=disk,
            )
    live.broadcast(LIVE_KIND, f"{node_id}:{t}")
    live.broadcast("node", node["name"])  # its row shows what is used now


def bucket_of(t):
    return int(t) // ROLLUP_SECONDS * ROLLUP_SECONDS


def due_buckets(last_rolled, oldest_unrolled, now, grace, keep_after):
    """The 5-minute buckets to roll up now, oldest first (a pure function).

    From the bucket holding `oldest_unrolled` (the oldest raw time after the newest
    bucket rolled up, `last_rolled`) up to the last bucket that ended at least `grace`
    seconds ago; none that begins before `keep_after`, since raw samples go from then
    on and a rollup of what is left would be partial.
    """
    if oldest_unrolled is None:
        return []
    first = bucket_of(oldest_unrolled)
    if last_rolled is not None:
        first = max(first, last_rolled + ROLLUP_SECONDS)
    first = max(first, bucket_of(keep_after) + ROLLUP_SECONDS)
    last = bucket_of(now - grace) - ROLLUP_SECONDS
    return list(range(first, last + 1, ROLLUP_SECONDS))


def cutoffs(now, raw_hours, rollup_days):
    """(raw rows older than this go, rollups older than this go), epoch seconds."""
    return int(now - raw_hours * 3600), int(now - rollup_days * 86400)


# What every rollup keeps of its samples: how many, and CPU and memory as min/avg/max.
SPREAD = {
    "samples": Count("id"),
    "cpu_min": Min("cpu"),
    "cpu_avg": Avg("cpu"),
    "cpu_max": Max("cpu"),
    "memory_min": Min("memory"),
    "memory_avg": Avg("memory"),
    "memory_max": Max("memory"),
}


def _spread(row):
    """A rollup's share of SPREAD, as its fields."""
    return {
        "samples": row["samples"],
        "cpu_min": row["cpu_min"],
        "cpu": row["cpu_avg"],
        "cpu_max": row["cpu_max"],
        "memory_min": row["memory_min"],
        "memory": int(row["memory_avg"]),
        "memory_max": row["memory_max"],
    }


def _roll_replicas(bucket):
    rows = (
        ReplicaSample.objects.filter(t__gte=bucket, t__lt=bucket + ROLLUP_SECONDS)
        .values("service_id", "slot")
        .annotate(
            **SPREAD,
            node=Max("node_id"),
            memory_limit=Max("memory_limit"),
            net_rx=Avg("net_rx"),
            net_tx=Avg("net_tx"),
            blk_read=Avg("blk_read"),
            blk_write=Avg("blk_write"),
        )
        .order_by()
    )
    made = [
        ReplicaRollup(
            bucket=bucket,
            service_id=row["service_id"],
            slot=row["slot"],
            node_id=row["node"],
            **_spread(row),
            memory_limit=row["memory_limit"],
            net_rx=row["net_rx"],
            net_tx=row["net_tx"],
            blk_read=row["blk_read"],
            blk_write=row["blk_write"],
        )
        for row in rows
    ]
    ReplicaRollup.objects.bulk_create(made, ignore_conflicts=True)
    return len(made)


def _roll_nodes(bucket):
    rows = (
        NodeSample.objects.filter(t__gte=bucket, t__lt=bucket + ROLLUP_SECONDS)
        .values("node_id")
        .annotate(
            **SPREAD,
            memory_total=Max("memory_total"),
            cpus=Max("cpus"),
            containers=Max("containers"),
            replicas=Max("replicas"),
            disk=Max("disk"),
        )
        .order_by()
    )
    made = [
        NodeRollup(
            bucket=bucket,
            node_id=row["node_id"],
            **_spread(row),
            memory_total=row["memory_total"],
            cpus=row["cpus"],
            containers=row["containers"],
            replicas=row["replicas"],
            disk=row["disk"],
        )
        for row in rows
    ]
    NodeRollup.objects.bulk_create(made, ignore_conflicts=True)
    return len(made)


def roll_up(now=None):
    """Roll up every bucket that is due, then prune; returns (buckets rolled, rows deleted)."""
    now = time.time() if now is None else now
    raw_after, rollup_after = cutoffs(
        now, settings.FLEET_METRICS_RAW_HOURS, settings.FLEET_METRICS_ROLLUP_DAYS
    )
    grace = 2 * settings.FLEET_METRICS_INTERVAL  # a round's rows land a little after its time
    last = max(
        (
            b
            for b in (
                ReplicaRollup.objects.aggregate(b=Max("bucket"))["b"],
                NodeRollup.objects.aggregate(b=Max("bucket"))["b"],
            )
            if b is not None
        ),
        default=None,
    )
    after = 0 if last is None else last + ROLLUP_SECONDS
    oldest = min(
        (
            t
            for t in (
                ReplicaSample.objects.filter(t__gte=after).aggregate(t=Min("t"))["t"],
                NodeSample.objects.filter(t__gte=after).aggregate(t=Min("t"))["t"],
            )
            if t is not None
        ),
        default=None,
    )
    buckets = due_buckets(last, oldest, now, grace, raw_after)
    for bucket in buckets:
        with transaction.atomic():
            _roll_replicas(bucket)
            _roll_nodes(bucket)
    deleted = prune(raw_after, rollup_after)
    return len(buckets), deleted


def prune(raw_after, rollup_after):
    """Delete raw rows older than `raw_after` and rollups older than `rollup_after`."""
    deleted = 0
    for model, field, cutoff in (
        (ReplicaSample, "t", raw_after),
        (NodeSample, "t", raw_after),
        (ReplicaRollup, "bucket", rollup_after),
        (NodeRollup, "bucket", rollup_after),
    ):
        # No foreign key points at these rows: Django deletes them in one statement.
        deleted += model.objects.filter(**{f"{field}__lt": cutoff}).delete()[0]
    return deleted
