"""The fleet in Prometheus' text format: a collector that reads the database on each scrape.

No counters are kept in any process (Fleet runs several): every scrape asks the
database what holds now, as a Prometheus exporter for a third-party system does.
"""

import time

from django.conf import settings
from django.db.models import Count, Max
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from fleet.models import Deployment, Node, NodeSample, ReplicaSample, Service

ROLLOUT_BUCKETS = (5, 10, 30, 60, 120, 300, 600, 1800)  # seconds


def _counts(model, field, choices):
    found = dict(model.objects.values_list(field).annotate(n=Count("id")).order_by())
    return [(value, found.get(value, 0)) for value in choices]


def rollout_histogram(durations, buckets=ROLLOUT_BUCKETS):
    """(cumulative [(le, count)] with +Inf last, sum) of rollout durations (a pure function)."""
    counts = [(str(float(le)), sum(1 for d in durations if d <= le)) for le in buckets]
    return [*counts, ("+Inf", len(durations))], sum(durations)


class FleetCollector:
    """Nodes, services, deployments and the latest samples, as Prometheus metric families."""

    def collect(self):
        nodes = GaugeMetricFamily("fleet_nodes", "Nodes by status.", labels=["status"])
        for status, n in _counts(Node, "status", Node.Status.values):
            nodes.add_metric([status], n)
        yield nodes

        desired = GaugeMetricFamily(
            "fleet_service_replicas_desired", "Replicas asked for.", labels=["service"]
        )
        running = GaugeMetricFamily(
            "fleet_service_replicas_running", "Replicas running.", labels=["service"]
        )
        healthy = GaugeMetricFamily(
            "fleet_service_replicas_healthy",
            "Replicas serving (running, healthy where checked).",
            labels=["service"],
        )
        for service in Service.objects.with_counts():
            desired.add_metric([service.name], service.replicas)
            running.add_metric([service.name], service.running_replicas)
            healthy.add_metric([service.name], service.healthy_replicas)
        yield from (desired, running, healthy)

        deployments = GaugeMetricFamily(
            "fleet_deployments", "Deployments by status.", labels=["status"]
        )
        for status, n in _counts(Deployment, "status", Deployment.Status.values):
            deployments.add_metric([status], n)
        yield deployments

        done = Deployment.objects.filter(
            status=Deployment.Status.SUCCEEDED, started_at__isnull=False, finished_at__isnull=False
        ).values_list("started_at", "finished_at")
        durations = [(end - start).total_seconds() for start, end in done]
        buckets, total = rollout_histogram(durations)
        rollouts = HistogramMetricFamily(
            "fleet_rollout_duration_seconds", "How long successful rollouts took."
        )
        rollouts.add_metric([], buckets, total)
        yield rollouts

        yield from self.latest_samples()

    def latest_samples(self):
        """Each replica's and node's newest sample of the last few rounds."""
        since = int(time.time() - 3 * settings.FLEET_METRICS_INTERVAL)
        cpu = GaugeMetricFamily(
            "fleet_replica_cpu_cores",
            "CPU a replica used over the last sampling interval, in cores.",
            labels=["service", "slot", "node"],
        )
        memory = GaugeMetricFamily(
            "fleet_replica_memory_bytes",
            "Memory a replica uses (page cache not counted).",
            labels=["service", "slot", "node"],
        )
        limit = GaugeMetricFamily(
            "fleet_replica_memory_limit_bytes",
            "A replica's memory limit (the host's memory when it has none).",
            labels=["service", "slot", "node"],
        )
        names = dict(Node.objects.values_list("pk", "name"))
        services = dict(Service.objects.values_list("pk", "name"))
        newest = ReplicaSample.objects.filter(t__gte=since)
        newest = newest.values("service_id", "slot").annotate(t=Max("t")).order_by()
        latest = {(r["service_id"], r["slot"]): r["t"] for r in newest}
        rows = ReplicaSample.objects.filter(t__gte=min(latest.values(), default=since))
        for row in rows.values(
            "t", "service_id", "slot", "node_id", "cpu", "memory", "memory_limit"
        ):
            if latest.get((row["service_id"], row["slot"])) != row["t"]:
                continue
            labels = [
                services.get(row["service_id"], ""),
                str(row["slot"]),
                names.get(row["node_id"], ""),
            ]
            cpu.add_metric(labels, row["cpu"] / 100)
            memory.add_metric(labels, row["memory"])
            limit.add_metric(labels, row["memory_limit"])
        yield from (cpu, memory, limit)

        node_cpu = GaugeMetricFamily(
            "fleet_node_cpu_cores", "CPU Fleet's replicas on a node use, in cores.", labels=["node"]
        )
        node_memory = GaugeMetricFamily(
            "fleet_node_memory_bytes", "Memory Fleet's replicas on a node use.", labels=["node"]
        )
        newest = NodeSample.objects.filter(t__gte=since).values("node_id").annotate(t=Max("t"))
        latest = {r["node_id"]: r["t"] for r in newest.order_by()}
        rows = NodeSample.objects.filter(t__gte=min(latest.values(), default=since))
        for row in rows.values("t", "node_id", "cpu", "memory"):
            if latest.get(row["node_id"]) == row["t"] and row["node_id"] in names:
                node_cpu.add_metric([names[row["node_id"]]], row["cpu"] / 100)
                node_memory.add_metric([names[row["node_id"]]], row["memory"])
        yield from (node_cpu, node_memory)


def exposition():
    """The whole fleet in the Prometheus text format (bytes)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector())
    return generate_latest(registry)
