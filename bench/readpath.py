"""Read path: the overview page and GET /api/services/ at two fleet sizes.

Fills the bench database through the ORM (no containers: nodes, services,
deployments, replicas and events as rows), then requests each page in-process
with Django's test client, counting the queries of every request and timing it.
The query count must not grow with the rows (no N+1); the time is reported.

    python -m bench.readpath [--requests 20]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

from bench.harness import ENV, ROOT, record, row, table

SIZES = [(5, 100), (50, 1000)]  # (nodes, replicas)
REPLICAS_PER_SERVICE = 10
EVENTS = 60
PAGES = {"overview": "/", "services API": "/api/services/"}


def setup_django():
    """Django in this process, on the bench database; migrated."""
    os.environ.update(ENV)
    os.environ["DJANGO_SETTINGS_MODULE"] = "fleet.settings"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=os.environ,
        check=True,
        capture_output=True,
    )
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # lets the test client's host in


def fill(nodes, replicas):
    """Replace whatever the database holds with `nodes` nodes and `replicas` replicas."""
    from django.contrib.auth.models import User
    from django.db import transaction
    from django.utils import timezone

    from fleet.models import Deployment, Event, Node, Replica, Service
    from fleet.services.spec import SPEC_FIELDS, ServiceSpecSerializer

    now = timezone.now()
    with transaction.atomic():
        for model in (Replica, Deployment, Service, Node, Event):
            model.objects.all().delete()
        User.objects.filter(username="bench-read").delete()
        node_rows = Node.objects.bulk_create(
            # Never contacted: no worker runs while this benchmark does.
            Node(
                name=f"node-{i}",
                endpoint=f"unix:///run/fleet-bench-none/node-{i}.sock",
                status=Node.Status.READY if i % 10 else Node.Status.DOWN,
                engine_version="20.10.24",
                cpus=2,
                memory_bytes=8 << 30,
                containers_running=replicas // nodes,
                last_seen_at=now,
                labels={"zone": "ab"[i % 2]},
            )
            for i in range(1, nodes + 1)
        )
        count = replicas // REPLICAS_PER_SERVICE
        services = Service.objects.bulk_create(
            Service(name=f"svc-{i}", replicas=REPLICAS_PER_SERVICE) for i in range(1, count + 1)
        )
        deployments = []
        for service in services:
            spec = ServiceSpecSerializer(
                data={"name": service.name, "image": "demo:1", "replicas": service.replicas}
            )
            spec.is_valid(raise_exception=True)
            deployments.append(
                Deployment(
                    service=service,
                    revision=1,
                    spec={k: spec.validated_data[k] for k in SPEC_FIELDS},
                    status=Deployment.Status.SUCCEEDED,
                    progress=100,
                )
            )
        deployments = Deployment.objects.bulk_create(deployments)
        for service, deployment in zip(services, deployments, strict=True):
            service.current_deployment = deployment
        Service.objects.bulk_update(services, ["current_deployment"])
        Replica.objects.bulk_create(
            Replica(
                service=service,
                deployment=deployment,
                slot=slot,
                node=node_rows[(i * REPLICAS_PER_SERVICE + slot) % nodes],
                container_id=f"{i:08x}{slot:056x}",
                state=Replica.State.RUNNING if slot % 7 else Replica.State.EXITED,
                health=Replica.Health.HEALTHY if slot % 5 else Replica.Health.STARTING,
                started_at=now,
                ready_at=now,
                observed_at=now,
            )
            for i, (service, deployment) in enumerate(zip(services, deployments, strict=True))
            for slot in range(1, REPLICAS_PER_SERVICE + 1)
        )
        Event.objects.bulk_create(
            Event(kind="replica.started", service_name=f"svc-{i % count + 1}", new="running")
            for i in range(EVENTS)
        )
        return User.objects.create_superuser("bench-read", password="bench-read-pass-123")


def time_page(client, path, requests):
    """(queries per request, set of counts seen, median ms, response bytes)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):  # warm caches: templates, permissions, the connection
        assert client.get(path).status_code == 200
    counts, times = [], []
    for _ in range(requests):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        counts.append(len(queries))
    return counts[0], sorted(set(counts)), statistics.median(times), len(response.content)


def measure(requests=20):
    setup_django()
    from django.test import Client

    from fleet.models import ApiToken

    details = {}
    for nodes, replicas in SIZES:
        user = fill(nodes, replicas)
        browser = Client()
        browser.force_login(user)
        program = Client(
            headers={
                "authorization": f"Token {ApiToken.objects.create(user=user, name='bench')[1]}"
            }
        )
        size = f"{nodes}/{replicas}"
        details[size] = {}
        for page, path in PAGES.items():
            client = browser if page == "overview" else program
            queries, seen, ms, length = time_page(client, path, requests)
            details[size][page] = {
                "queries": queries,
                "query_counts_seen": seen,
                "median_ms": round(ms, 1),
                "bytes": length,
                "requests": requests,
            }
    rows = []
    sizes = list(details)
    for page, path in PAGES.items():
        few, many = (details[s][page] for s in sizes)
        flat = few["queries"] == many["queries"] and len(many["query_counts_seen"]) == 1
        rows.append(
            row(
                "read path",
                f"{page} {path}: queries per request, {sizes[0]} -> {sizes[1]} nodes/replicas",
                f"{few['queries']} -> {many['queries']}",
                aim="flat",
                met=flat,
            )
        )
        # The overview at the larger size has an aim; the API's time is only reported.
        aimed = page == "overview"
        rows.append(
            row(
                "read path",
                f"{page} {path}: median response, {sizes[0]} -> {sizes[1]} nodes/replicas",
                f"{few['median_ms']:.0f} -> {many['median_ms']:.0f} ms",
                aim="< 100 ms at the larger" if aimed else "",
                met=(many["median_ms"] < 100) if aimed else None,
            )
        )
    return rows, details


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    rows, details = measure(parser.parse_args().requests)
    record("read path", rows, details)
    table(rows)
