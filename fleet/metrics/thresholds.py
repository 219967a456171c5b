"""Thresholds: "CPU (or memory) above X% for Y minutes" on a service or a node.

Beat checks every enabled rule every 30 s against the raw samples of its last Y
minutes. A rule starts to hold when every round of those minutes was above X
(and the samples reach back that far); it stops when every round of the last
minute is at or below X, or when nothing was sampled for the whole window (the
service stopped, the node went away). Each start and stop is claimed with a
conditional update and recorded as one Event (`metric.threshold_exceeded`,
`metric.threshold_cleared`), which the alerts read.
"""

import time
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Avg, F, FloatField
from django.db.models.functions import Cast

from fleet.models import Event, EventKind, MetricThreshold, NodeSample, ReplicaSample

EXCEEDED, CLEARED = "exceeded", "cleared"
CLEAR_AFTER = 60  # seconds every round must be at or below the threshold before it clears


def verdict(points, above, minutes, exceeded, now, interval):
    """EXCEEDED, CLEARED or None for a rule given its rounds' values (a pure function).

    `points` are (epoch seconds, value) pairs, oldest first; `exceeded` is whether
    the rule holds now. A gap of a round or two at the window's start is allowed.
    """
    start = now - minutes * 60
    inside = [(t, v) for t, v in points if t >= start]
    if not exceeded:
        if not inside or inside[0][0] > start + 2 * interval:
            return None  # not sampled for long enough to tell
        return EXCEEDED if all(v > above for _, v in inside) else None
    if not inside:
        return CLEARED
    recent = [v for t, v in inside if t >= now - max(CLEAR_AFTER, 2 * interval)]
    if recent and all(v <= above for v in recent):
        return CLEARED
    return None


def points(rule, since):
    """The rule's value at each round since `since`, oldest first: [(t, percent)]."""
    if rule.service_id:
        rows = ReplicaSample.objects.filter(service_id=rule.service_id, t__gte=since)
        if rule.metric == MetricThreshold.Metric.CPU:
            value = Avg("cpu")
        else:
            rows = rows.filter(memory_limit__gt=0)
            value = Avg(Cast(F("memory"), FloatField()) * 100.0 / F("memory_limit"))
    else:
        rows = NodeSample.objects.filter(node_id=rule.node_id, t__gte=since)
        if rule.metric == MetricThreshold.Metric.CPU:
            rows = rows.filter(cpus__gt=0)
            value = Avg(F("cpu") / F("cpus"))
        else:
            rows = rows.filter(memory_total__gt=0)
            value = Avg(Cast(F("memory"), FloatField()) * 100.0 / F("memory_total"))
    rows = rows.values("t").annotate(value=value).order_by("t")
    return [(row["t"], row["value"]) for row in rows]


def check(rule, now=None):
    """Check one rule; record its event if it started or stopped holding. Returns the verdict."""
    now = time.time() if now is None else now
    series = points(rule, int(now - rule.minutes * 60))
    exceeded = rule.exceeded_since is not None
    outcome = verdict(
        series, rule.above, rule.minutes, exceeded, now, settings.FLEET_METRICS_INTERVAL
    )
    value = series[-1][1] if series else None
    rules = MetricThreshold.objects.filter(pk=rule.pk)
    if outcome == EXCEEDED:
        at = datetime.fromtimestamp(now, tz=UTC)
        if rules.filter(exceeded_since__isnull=True).update(exceeded_since=at, last_value=value):
            _record(rule, EventKind.METRIC_THRESHOLD_EXCEEDED, f"{value:.1f}%")
    elif outcome == CLEARED:
        if rules.filter(exceeded_since__isnull=False).update(exceeded_since=None, last_value=value):
            now_text = "no samples" if value is None else f"{value:.1f}%"
            _record(rule, EventKind.METRIC_THRESHOLD_CLEARED, now_text)
    elif value is not None:
        rules.update(last_value=value)
    return outcome


def _record(rule, kind, value_text):
    Event.objects.record(
        kind,
        service=rule.service if rule.service_id else None,
        node=rule.node if rule.node_id else None,
        old="exceeded" if kind == EventKind.METRIC_THRESHOLD_CLEARED else "",
        new="exceeded" if kind == EventKind.METRIC_THRESHOLD_EXCEEDED else "",
        reason=f"{rule.describe()} (rule {rule.pk}): now {value_text}",
    )


def check_all(now=None):
    """Check every enabled rule; a rule disabled while it held is cleared."""
    rules = MetricThreshold.objects.select_related("service", "node")
    for rule in rules.filter(enabled=False, exceeded_since__isnull=False):
        if MetricThreshold.objects.filter(pk=rule.pk, exceeded_since__isnull=False).update(
            exceeded_since=None
        ):
            _record(rule, EventKind.METRIC_THRESHOLD_CLEARED, "rule disabled")
    return {rule.pk: check(rule, now) for rule in rules.filter(enabled=True)}
