"""Series for the charts and the API: a range and a step in, aligned arrays out.

plan() decides (a pure function) where a range is read from: raw samples when the
step is under the rollups' 5 minutes and the range is at most 6 hours, all within
the raw retention; the 5-minute rollups otherwise (the step then a multiple of 5
minutes). Either way the database groups rows by step (integer times: `t / step * step` is the same
integer arithmetic in SQLite and PostgreSQL), so an answer has at most a few
hundred points per series whatever the range.

The shape (docs/metrics.md, and the OpenAPI schema):
{"since", "until" (ISO 8601), "step" (seconds), "source" ("raw" | "rollup"),
 "times": [epoch seconds of each step's start],
 "total": {metric: [value or null per time]},
 "replicas": [{"service", "slot", metric: [...]}]}
Every value is the average over its step; a total is the sum of the replicas' averages.
"""

import math
from dataclasses import dataclass

from django.db import connection
from django.db.models import Avg, F, Max

from fleet.models import NodeRollup, NodeSample, ReplicaRollup, ReplicaSample, Service
from fleet.models.metrics import ROLLUP_SECONDS

MAX_POINTS = 2000  # per series: a step so small that a range needs more is refused
AUTO_POINTS = 360  # the step chosen when none is asked for: an hour at 10 s
RAW_SPAN = 6 * 3600  # longer ranges read rollups: a day of raw rows is 8,640 per replica
REPLICA_METRICS = ("cpu", "memory", "memory_limit", "net_rx", "net_tx", "blk_read", "blk_write")
NODE_METRICS = ("cpu", "memory", "memory_total", "cpus", "containers", "replicas", "disk")
# How each metric is combined within a step (a limit or a size is the most seen).
_MOST = {"memory_limit", "memory_total", "cpus", "containers", "replicas", "disk"}


class RangeError(ValueError):
    """A range or step that cannot be answered; the message says why."""


@dataclass(frozen=True)
class Plan:
    """Where and how to read a range."""

    since: int
    until: int
    step: int
    source: str  # "raw" or "rollup"

    @property
    def times(self):
        return list(range(self.since // self.step * self.step, self.until, self.step))


def plan(since, until, step, now, interval, raw_hours, rollup_days):
    """The Plan for a range [since, until) in epoch seconds and a step (None: chosen)."""
    if until <= since:
        raise RangeError("since must be before until.")
    span = until - since
    if span > rollup_days * 86400 + 3600:
        raise RangeError(f"A range may be at most {rollup_days:g} days: older data is not kept.")
    if step is None:
        step = max(math.ceil(interval), math.ceil(span / AUTO_POINTS))
    if step < 1:
        raise RangeError("step must be at least 1 second.")
    if step > span:
        raise RangeError("step must not be longer than the range.")
    raw = step < ROLLUP_SECONDS and span <= RAW_SPAN and since >= now - raw_hours * 3600
    if not raw:
        step = math.ceil(step / ROLLUP_SECONDS) * ROLLUP_SECONDS
    if span / step > MAX_POINTS:
        raise RangeError(
            f"A step of {step} s gives {math.ceil(span / step)} points; at most {MAX_POINTS}: "
            "ask for a longer step or a shorter range."
        )
    # A round at the very second `until` falls in is in (a default until is "now").
    return Plan(int(since), math.ceil(until), int(step), "raw" if raw else "rollup")


def _aggregates(metrics):
    return {m: (Max(m) if m in _MOST else Avg(m)) for m in metrics}


def _grouped(rows, time_field, plan, keys, metrics):
    """Rows as dicts of "at", the keys and the metrics, one per key and step.

    Read through the cursor, not the ORM's iterator: a day of 30 replicas is some 9,000
    rows of 10 columns, and the ORM's per-value conversions cost more than the query
    (the rounding in _arrays converts each value anyway).
    """
    rows = rows.filter(**{f"{time_field}__gte": plan.since, f"{time_field}__lt": plan.until})
    rows = rows.annotate(at=F(time_field) / plan.step * plan.step)
    query = rows.values("at", *keys).annotate(**_aggregates(metrics)).order_by().query
    sql, params = query.sql_with_params()
    names = ["at", *keys, *metrics]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _rounder(metric):
    """How a metric's values are shown: CPU to 0.01, rates to 0.1, sizes and counts whole."""
    # float(): PostgreSQL averages whole numbers as numeric (Decimal), which JSON cannot hold.
    if metric == "cpu":
        return lambda value: round(float(value), 2)
    if metric in ("net_rx", "net_tx", "blk_read", "blk_write"):
        return lambda value: round(float(value), 1)
    return int


def _rounded(metric, value):
    return None if value is None else _rounder(metric)(value)


def _arrays(rows, times, keyof, metrics):
    """{key: {metric: [value per time]}} from grouped rows (a day of 30 replicas is some
    60,000 values: one lookup of each metric's rounding, not one per value)."""
    index = {t: i for i, t in enumerate(times)}
    rounders = [(m, _rounder(m)) for m in metrics]
    series = {}
    for row in rows:
        i = index.get(row["at"])
        if i is None:
            continue
        key = keyof(row)
        entry = series.get(key)
        if entry is None:
            entry = series[key] = {m: [None] * len(times) for m in metrics}
        for m, shown in rounders:
            value = row[m]
            if value is not None:
                entry[m][i] = shown(value)
    return series


def _summed(replicas, times, metrics):
    total = {}
    for m in metrics:
        sums, shown = [None] * len(times), _rounder(m)
        for entry in replicas.values():
            for i, value in enumerate(entry[m]):
                if value is not None:
                    sums[i] = value if sums[i] is None else sums[i] + value
        total[m] = [None if value is None else shown(value) for value in sums]
    return total


def _replica_list(series, names):
    return [
        {"service": names.get(service_id, ""), "slot": slot, **values}
        for (service_id, slot), values in sorted(
            series.items(), key=lambda kv: (names.get(kv[0][0], ""), kv[0][1])
        )
    ]


def _replica_rows(plan):
    model, field = (ReplicaSample, "t") if plan.source == "raw" else (ReplicaRollup, "bucket")
    return model.objects.all(), field


def for_service(service, plan):
    """The service's series: each replica (by slot) and their sum."""
    rows, field = _replica_rows(plan)
    rows = _grouped(
        rows.filter(service_id=service.pk), field, plan, ["service_id", "slot"], REPLICA_METRICS
    )
    times = plan.times
    series = _arrays(rows, times, lambda r: (r["service_id"], r["slot"]), REPLICA_METRICS)
    return {
        "times": times,
        "total": _summed(series, times, REPLICA_METRICS),
        "replicas": _replica_list(series, {service.pk: service.name}),
    }


def for_node(node, plan):
    """The node's series (what its replicas use in sum, and its engine) and each replica's."""
    model, field = (NodeSample, "t") if plan.source == "raw" else (NodeRollup, "bucket")
    times = plan.times
    rows = _grouped(model.objects.filter(node_id=node.pk), field, plan, [], NODE_METRICS)
    total = _arrays(rows, times, lambda r: "node", NODE_METRICS).get(
        "node", {m: [None] * len(times) for m in NODE_METRICS}
    )
    replica_rows, replica_field = _replica_rows(plan)
    replica_rows = _grouped(
        replica_rows.filter(node_id=node.pk),
        replica_field,
        plan,
        ["service_id", "slot"],
        ("cpu", "memory"),
    )
    series = _arrays(replica_rows, times, lambda r: (r["service_id"], r["slot"]), ("cpu", "memory"))
    names = dict(Service.objects.filter(pk__in={k[0] for k in series}).values_list("pk", "name"))
    return {"times": times, "total": total, "replicas": _replica_list(series, names)}
