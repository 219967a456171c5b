"""Metrics in the database: rollups and pruning, series through the API, /metrics, thresholds.

Samples are written as the sampler writes them (store.write_round), at chosen times,
so that hours and days of rounds take no time; the sampler itself runs against the
lab in test_metrics.py.
"""

import time

import pytest
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from fleet.metrics import store, thresholds
from fleet.metrics.readings import Usage
from fleet.models import (
    Event,
    EventKind,
    MetricThreshold,
    Node,
    NodeRollup,
    NodeSample,
    ReplicaRollup,
    ReplicaSample,
    Service,
)
from tests.conftest import api_for

pytestmark = pytest.mark.django_db(transaction=True)

NOW = int(time.time()) // 300 * 300  # the start of the current 5-minute bucket


@pytest.fixture
def web(redis_server):
    node = Node.objects.create(
        name="n1", endpoint="unix:///nowhere.sock", cpus=2, memory_bytes=4 << 30
    )
    service = Service.objects.create(name="web", replicas=2)
    return node, service


def use(cpu, memory=100 << 20, limit=1 << 30, rx=10.0):
    return Usage(cpu, memory, limit, rx, rx / 2, 0.0, 0.0)


def write(node, service, t, cpus):
    """One round of the node: a replica per slot with the given CPU percentages."""
    rows = [
        ({"service_id": service.pk, "slot": slot}, use(cpu))
        for slot, cpu in enumerate(cpus, start=1)
    ]
    store.write_round(node.pk, t, rows)


def test_rollups_keep_min_avg_max_per_slot_and_bucket_once_and_pruning_drops_old_rows(web):
    node, service = web
    first = NOW - 900
    for i in range(60):  # two buckets of rounds every 10 s
        write(node, service, first + 10 * i, [10 + i % 3, 50])
    assert ReplicaSample.objects.count() == 120 and NodeSample.objects.count() == 60
    rolled, _ = store.roll_up(now=NOW + 30)
    assert rolled == 3  # the two with samples and the empty one before now
    slot1 = ReplicaRollup.objects.get(service=service, slot=1, bucket=first)
    assert (slot1.samples, slot1.cpu_min, slot1.cpu_max) == (30, 10, 12)
    assert slot1.cpu == pytest.approx(11, abs=0.1)
    assert slot1.memory == 100 << 20 and slot1.net_rx == 10.0
    node_row = NodeRollup.objects.get(node=node, bucket=first)
    assert node_row.cpu_min == 60 and node_row.cpu_max == 62 and node_row.cpus == 2
    assert store.roll_up(now=NOW + 30)[0] == 0  # nothing rolled twice
    assert ReplicaRollup.objects.count() == 4 and NodeRollup.objects.count() == 2

    write(node, service, NOW - 2 * 86400, [5, 5])  # older than the raw hours
    ReplicaRollup.objects.create(
        bucket=NOW - 40 * 86400,
        service=service,
        slot=1,
        samples=1,
        cpu_min=1,
        cpu=1,
        cpu_max=1,
        memory_min=1,
        memory=1,
        memory_max=1,
        memory_limit=1,
        net_rx=0,
        net_tx=0,
        blk_read=0,
        blk_write=0,
    )
    store.roll_up(now=NOW + 30)
    assert not ReplicaSample.objects.filter(t__lt=NOW - 86400).exists()
    assert not NodeSample.objects.filter(t__lt=NOW - 86400).exists()
    assert not ReplicaRollup.objects.filter(bucket__lt=NOW - 30 * 86400).exists()
    assert ReplicaSample.objects.count() == 120  # the recent ones stay


def test_a_service_series_gives_each_replica_and_their_sum_per_step(web, api):
    node, service = web
    for i in range(6):
        write(node, service, NOW - 60 + 10 * i, [20, 30])
    answer = api.get(f"/api/services/web/metrics/?since={NOW - 60}&until={NOW}&step=20")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert (body["step"], body["source"]) == (20, "raw")
    assert body["times"] == [NOW - 60, NOW - 40, NOW - 20]
    assert [(r["service"], r["slot"]) for r in body["replicas"]] == [("web", 1), ("web", 2)]
    assert body["replicas"][0]["cpu"] == [20, 20, 20]
    assert body["total"]["cpu"] == [50, 50, 50]
    assert body["total"]["memory"] == [200 << 20] * 3
    assert body["total"]["net_rx"] == [20.0] * 3

    node_answer = api.get(f"/api/nodes/n1/metrics/?since={NOW - 60}&until={NOW}&step=30").json()
    assert node_answer["total"]["cpu"] == [50, 50]
    assert node_answer["total"]["cpus"] == [2, 2]
    assert [r["slot"] for r in node_answer["replicas"]] == [1, 2]

    # As if from two days ago, rolled up back then (raw rows that old are not kept).
    ReplicaSample.objects.all().update(t=NOW - 2 * 86400)
    store.roll_up(now=NOW - 2 * 86400 + 600)
    week = api.get(f"/api/services/web/metrics/?since={NOW - 7 * 86400}&until={NOW}").json()
    assert week["source"] == "rollup" and week["step"] % 300 == 0
    assert 50 in week["total"]["cpu"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("since=nan", "since"),
        ("until=1e400", "until"),
        ("since=-5", "since"),
        ("until=2026-13-40T00:00:00", "until"),
        ("step=ten", "step"),
        ("step=0", "non_field_errors"),
        ("since=2000&until=1000", "non_field_errors"),
        ("since=0&until=864000000", "non_field_errors"),
        (f"step=1&since={NOW - 20000}&until={NOW}", "non_field_errors"),
        ("colour=red", "colour"),
    ],
)
def test_a_bad_range_is_a_400_that_names_what_is_wrong(web, api, query, field):
    answer = api.get(f"/api/services/web/metrics/?{query}")
    assert answer.status_code == 400
    assert field in answer.json(), answer.json()


def test_series_of_an_unknown_service_or_node_are_404_and_never_anonymous(web, api, anon_api):
    assert api.get("/api/services/nope/metrics/").status_code == 404
    assert api.get("/api/nodes/nope/metrics/").status_code == 404
    assert anon_api.get("/api/services/web/metrics/").status_code == 401


def test_the_metrics_series_are_in_the_openapi_schema(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    assert "/api/services/{name}/metrics/" in schema["paths"]
    params = {p["name"] for p in schema["paths"]["/api/nodes/{name}/metrics/"]["get"]["parameters"]}
    assert {"since", "until", "step"} <= params


def test_prometheus_scrapes_need_a_token_and_read_the_fleet(web, admin_user, viewer, nobody):
    node, service = web
    write(node, service, int(time.time()) - 5, [40, 60])
    assert APIClient().get("/metrics").status_code == 401
    by_session = APIClient()
    by_session.force_login(admin_user)
    assert by_session.get("/metrics").status_code == 401  # a token, never a session
    assert api_for(nobody).get("/metrics").status_code == 403
    answer = api_for(viewer).get("/metrics", HTTP_ACCEPT="text/plain")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.content.decode())}
    nodes = {s.labels["status"]: s.value for s in families["fleet_nodes"].samples}
    assert nodes["unknown"] == 1 and nodes["ready"] == 0
    desired = families["fleet_service_replicas_desired"].samples
    assert [(s.labels["service"], s.value) for s in desired] == [("web", 2)]
    cpu = {s.labels["slot"]: s.value for s in families["fleet_replica_cpu_cores"].samples}
    assert cpu == {"1": 0.4, "2": 0.6}
    assert "fleet_rollout_duration_seconds" in families
    assert "fleet_deployments" in families


def rule(**fields):
    return MetricThreshold.objects.create(**{"metric": "cpu", "above": 80, "minutes": 2, **fields})


@override_settings(FLEET_METRICS_INTERVAL=10)
def test_a_threshold_is_recorded_once_when_it_holds_and_once_when_it_clears(web):
    node, service = web
    threshold = rule(service=service)
    now = int(time.time())
    for i in range(13):  # two minutes of rounds, both replicas near 90%
        write(node, service, now - 120 + 10 * i, [90, 95])
    assert thresholds.check_all(now) == {threshold.pk: thresholds.EXCEEDED}
    thresholds.check_all(now + 1)
    exceeded = Event.objects.filter(kind=EventKind.METRIC_THRESHOLD_EXCEEDED)
    assert exceeded.count() == 1
    assert exceeded.get().service_name == "web"
    assert "CPU above 80% for 2 min" in exceeded.get().reason
    assert "92.5%" in exceeded.get().reason
    for i in range(1, 8):
        write(node, service, now + 10 * i, [10, 20])
    thresholds.check_all(now + 70)
    thresholds.check_all(now + 71)
    cleared = Event.objects.filter(kind=EventKind.METRIC_THRESHOLD_CLEARED)
    assert cleared.count() == 1 and "15.0%" in cleared.get().reason
    threshold.refresh_from_db()
    assert threshold.exceeded_since is None


def test_a_threshold_disabled_while_it_holds_is_cleared(web):
    node, service = web
    threshold = rule(service=service, minutes=1)
    now = int(time.time())
    for i in range(7):
        write(node, service, now - 60 + 10 * i, [99, 99])
    assert thresholds.check_all(now) == {threshold.pk: thresholds.EXCEEDED}
    MetricThreshold.objects.filter(pk=threshold.pk).update(enabled=False)
    assert thresholds.check_all(now + 1) == {}
    cleared = Event.objects.get(kind=EventKind.METRIC_THRESHOLD_CLEARED)
    assert "rule disabled" in cleared.reason


def test_a_node_memory_threshold_reads_use_against_the_nodes_memory(web):
    node, service = web
    threshold = rule(node=node, metric="memory", above=1, minutes=1)
    now = int(time.time())
    for i in range(7):
        write(node, service, now - 60 + 10 * i, [1, 1])  # 200 MiB of 4 GiB: 4.9%
    assert thresholds.check(threshold, now) == thresholds.EXCEEDED
    assert Event.objects.get(kind=EventKind.METRIC_THRESHOLD_EXCEEDED).node_name == "n1"


def test_threshold_rules_are_validated_and_only_admins_make_them(web, api, viewer, operator):
    body = {"service": "web", "metric": "cpu", "above": 80, "minutes": 5}
    made = api.post("/api/metric-thresholds/", body, format="json")
    assert made.status_code == 201, made.json()
    assert made.json()["exceeded_since"] is None
    bad = [
        ({**body, "node": "n1"}, "non_field_errors"),
        ({"metric": "cpu", "above": 80, "minutes": 5}, "non_field_errors"),
        ({**body, "metric": "memory", "above": 150}, "above"),
        ({**body, "minutes": 0}, "minutes"),
        ({**body, "metric": "disk"}, "metric"),
        ({**body, "above": "NaN"}, "above"),
        ({**body, "service": "nope"}, "service"),
        ({"metric": "cpu", "above": 80, "minutes": 5, "node": "\x00"}, "node"),
        ({**body, "exceeded_since": "2026-01-01T00:00:00Z"}, "exceeded_since"),
    ]
    for payload, field in bad:
        answer = api.post("/api/metric-thresholds/", payload, format="json")
        assert answer.status_code == 400 and field in answer.json(), (payload, answer.json())
    assert MetricThreshold.objects.count() == 1
    assert api_for(viewer).get("/api/metric-thresholds/").json()[0]["service"] == "web"
    assert api_for(operator).post("/api/metric-thresholds/", body, format="json").status_code == 403


def test_the_admin_refuses_a_threshold_on_both_a_service_and_a_node(web, admin_client):
    node, service = web
    form = {"metric": "cpu", "above": "80", "minutes": "5", "enabled": "on"}
    url = "/admin/fleet/metricthreshold/add/"
    both = admin_client.post(url, {**form, "service": service.pk, "node": node.pk})
    assert both.status_code == 200 and "one service or one node" in both.content.decode()
    assert not MetricThreshold.objects.exists()
    made = admin_client.post(url, {**form, "service": service.pk})
    assert made.status_code == 302
    assert MetricThreshold.objects.get().service == service


def test_a_round_goes_live_as_one_message_and_the_overview_shows_use_beside_reservations(
    web, client, viewer
):
    from fleet.metrics.latest import round_message

    node, service = web
    t = int(time.time()) - 2
    write(node, service, t, [25, 75])
    data, html = round_message(f"{node.pk}:{t}")
    assert html == "" and (data["node"], data["t"]) == ("n1", t)
    assert data["total"]["cpu"] == 100 and data["total"]["cpus"] == 2
    assert [(r["service"], r["slot"], r["cpu"]) for r in data["replicas"]] == [
        ("web", 1, 25),
        ("web", 2, 75),
    ]
    assert round_message("x:y") == (None, "")
    client.force_login(viewer)
    page = client.get("/").content.decode()
    row = page[page.index('id="node-n1"') :]
    assert "1 used" in row and "200.0\xa0MB used" in row and "reserved of 2" in row, row[:1500]
