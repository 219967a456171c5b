"""The services API without engines: validation, desired state, events and permissions."""

import pytest

from fleet.models import Deployment, Event, EventKind, Replica, Service
from tests.conftest import api_for

pytestmark = pytest.mark.django_db

IMAGE = "10.250.8.1:5000/fleet/demo:1"
SPEC = {"name": "web", "image": IMAGE, "replicas": 3, "ports": [{"container": 80}]}


def create(api, **changes):
    response = api.post("/api/services/", {**SPEC, **changes}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_it_refuses_anonymous_requests(anon_api):
    for method, url in [
        ("get", "/api/services/"),
        ("post", "/api/services/"),
        ("get", "/api/services/web/"),
        ("post", "/api/services/web/scale"),
        ("post", "/api/services/web/deploy"),
        ("post", "/api/services/web/rollback"),
        ("get", "/api/services/web/replicas/"),
        ("get", "/api/deployments/"),
    ]:
        assert getattr(anon_api, method)(url, {}, format="json").status_code == 401, url


def test_creating_a_service_fills_the_defaults_and_records_revision_1(api):
    body = create(api)
    assert body["name"] == "web"
    assert body["replicas"] == 3
    assert body["running_replicas"] == body["healthy_replicas"] == 0
    assert body["status"] == "deploying"
    assert body["current_deployment"]["revision"] == 1
    assert body["ports"] == [{"container": 80, "published": None, "protocol": "tcp"}]
    assert body["update"]["failure_action"] == "rollback"
    assert body["restart_policy"] == "any"
    assert body["healthcheck"] is None
    deployment = Deployment.objects.get()
    assert (deployment.revision, deployment.status, deployment.actor) == (1, "pending", "root")
    assert list(Event.objects.values_list("kind", flat=True)) == [EventKind.SERVICE_CREATED]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**SPEC, "name": "Web!"}, "name"),
        ({**SPEC, "image": "Not An Image"}, "image"),
        ({**SPEC, "replicas": -1}, "replicas"),
        ({**SPEC, "replicas": 101}, "replicas"),
        ({**SPEC, "ports": [{"container": 70000}]}, "ports"),
        ({**SPEC, "constraints": ["zone=a"]}, "constraints"),
        ({**SPEC, "update": {"order": "sideways"}}, "update"),
        ({**SPEC, "healthcheck": {"command": ["wget"]}}, "healthcheck"),
        ({**SPEC, "env": {"1BAD": "x"}}, "env"),
        ({**SPEC, "restart_policy": "sometimes"}, "restart_policy"),
        ({**SPEC, "colour": "blue"}, "colour"),
        ({"name": "web"}, "image"),
    ],
)
def test_a_bad_spec_gets_field_errors_and_changes_nothing(api, payload, field):
    response = api.post("/api/services/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Service.objects.exists()
    assert not Deployment.objects.exists()
    assert not Event.objects.exists()


def test_a_duplicate_name_is_refused(api):
    create(api)
    response = api.post("/api/services/", SPEC, format="json")
    assert response.status_code == 400
    assert "already exists" in response.json()["name"][0]
    assert Service.objects.count() == 1


def test_scale_records_the_change_and_refuses_bad_counts(api):
    create(api)
    response = api.post("/api/services/web/scale", {"replicas": 7}, format="json")
    assert response.status_code == 202
    assert response.json()["replicas"] == 7
    for bad in (-1, 101, "many", None):
        refused = api.post("/api/services/web/scale", {"replicas": bad}, format="json")
        assert refused.status_code == 400
        assert "replicas" in refused.json()
    assert Service.objects.get().replicas == 7
    scaled = Event.objects.filter(kind=EventKind.SERVICE_SCALED)
    assert [(e.old, e.new) for e in scaled] == [("3", "7")]


def test_deploy_with_a_partial_spec_makes_the_next_revision(api):
    create(api)
    response = api.post("/api/services/web/deploy", {"image": "app:2"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert (body["revision"], body["status"]) == (2, "pending")
    assert body["spec"]["image"] == "app:2"
    assert body["spec"]["ports"] == [{"container": 80, "published": None, "protocol": "tcp"}]
    assert api.get(f"/api/deployments/{body['id']}/").json()["revision"] == 2
    assert api.get("/api/services/web/").json()["current_deployment"]["revision"] == 2


def test_deploying_the_same_spec_again_makes_no_revision(api):
    create(api)
    response = api.post("/api/services/web/deploy", {"image": IMAGE}, format="json")
    assert response.status_code == 200
    assert Deployment.objects.count() == 1


def test_a_bad_deploy_changes_nothing(api):
    create(api)
    for payload in ({"image": ""}, {"update": {"parallelism": 0}}, {"name": "other"}, {"x": 1}):
        assert api.post("/api/services/web/deploy", payload, format="json").status_code == 400
    assert api.post("/api/services/web/deploy", {"replicas": 4}, format="json").status_code == 400
    assert Deployment.objects.count() == 1
    assert Service.objects.get().replicas == 3


def test_patch_changes_spec_and_count_together(api):
    create(api)
    response = api.patch("/api/services/web/", {"replicas": 5, "env": {"A": "1"}}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert (body["replicas"], body["env"], body["current_deployment"]["revision"]) == (
        5,
        {"A": "1"},
        2,
    )


def test_rollback_without_an_earlier_good_revision_is_a_conflict(api):
    create(api)
    response = api.post("/api/services/web/rollback")
    assert response.status_code == 409
    assert "no earlier revision" in response.json()["detail"]
    assert Deployment.objects.get().status == "pending"


def test_rollback_returns_to_the_last_good_revision(api):
    create(api)
    Deployment.objects.update(status=Deployment.Status.SUCCEEDED)
    api.post("/api/services/web/deploy", {"image": "app:2"}, format="json")
    response = api.post("/api/services/web/rollback")
    assert response.status_code == 202
    assert response.json()["revision"] == 1
    assert Deployment.objects.get(revision=2).status == "rolled_back"
    assert api.get("/api/services/web/").json()["image"] == IMAGE


def test_delete_marks_the_service_and_refuses_further_changes(api):
    create(api)
    response = api.delete("/api/services/web/")
    assert response.status_code == 202
    assert response.json()["status"] == "deleting"
    assert api.post("/api/services/web/scale", {"replicas": 1}, format="json").status_code == 409


def test_replicas_and_counts_come_from_the_rows(api, db):
    create(api)
    service = Service.objects.get()
    for slot, health in ((1, "healthy"), (2, "unhealthy"), (3, "starting")):
        Replica.objects.create(
            service=service,
            deployment=service.current_deployment,
            slot=slot,
            state="running",
            health=health,
            container_id=f"c{slot}",
        )
    body = api.get("/api/services/web/").json()
    assert (body["running_replicas"], body["healthy_replicas"]) == (3, 1)
    rows = api.get("/api/services/web/replicas/").json()
    assert [(r["slot"], r["container_id"], r["health"]) for r in rows] == [
        (1, "c1", "healthy"),
        (2, "c2", "unhealthy"),
        (3, "c3", "starting"),
    ]
    assert set(rows[0]) >= {"slot", "node", "container_id", "state", "health", "started_at"}


def test_service_events_filter_by_service(api):
    create(api)
    create(api, name="other")
    events = api.get("/api/events/", {"service": "other"}).json()["results"]
    assert [(e["kind"], e["service"]) for e in events] == [("service.created", "other")]


def test_a_viewer_reads_but_cannot_act(viewer, api):
    create(api)
    client = api_for(viewer)
    assert client.get("/api/services/web/").status_code == 200
    assert client.post("/api/services/web/scale", {"replicas": 1}, format="json").status_code == 403
    assert (
        client.post("/api/services/web/deploy", {"image": "x:1"}, format="json").status_code == 403
    )
    assert client.delete("/api/services/web/").status_code == 403
    assert client.post("/api/services/", {**SPEC, "name": "x"}, format="json").status_code == 403
    assert Service.objects.get(name="web").replicas == 3


def test_the_list_is_by_name_and_costs_the_same_queries_for_many_services(
    api, django_assert_max_num_queries
):
    names = [f"svc-{n}" for n in (7, 3, 11, 0, 5, 1, 9, 2, 10, 4, 8, 6)]
    for name in names:
        create(api, name=name)
    with django_assert_max_num_queries(6):
        listed = [s["name"] for s in api.get("/api/services/").json()]
    assert listed == sorted(names)


def test_a_revision_superseded_mid_rollout_is_what_a_rollback_returns_to(api):
    create(api)
    api.post("/api/services/web/deploy", {"image": "app:2"}, format="json")
    first = Deployment.objects.get(revision=1)
    assert (first.status, first.superseded) == ("failed", True)
    response = api.post("/api/services/web/rollback")
    assert response.status_code == 202
    assert response.json()["revision"] == 1
    first.refresh_from_db()
    assert (first.status, first.superseded) == ("running", False)


def test_a_restart_request_marks_the_slot_and_tells_a_running_converge_to_look_again(api):
    create(api)
    service = Service.objects.get()
    service.replica_set.create(deployment=service.current_deployment, slot=2)
    generation = service.generation
    response = api.post("/api/services/web/replicas/2/restart")
    assert response.status_code == 202
    assert Replica.objects.get(slot=2).restart_requested
    assert Service.objects.get().generation == generation + 1
    assert Event.objects.filter(kind=EventKind.REPLICA_RESTART_REQUESTED, reason="slot 2").exists()


def test_restarting_a_slot_without_a_replica_is_refused_and_changes_nothing(api):
    create(api)
    generation = Service.objects.get().generation
    response = api.post("/api/services/web/replicas/7/restart")
    assert response.status_code == 400
    assert "Slot 7" in response.json()["slot"][0]
    assert Service.objects.get().generation == generation
    assert not Event.objects.filter(kind=EventKind.REPLICA_RESTART_REQUESTED).exists()


def test_a_deploy_merges_into_the_spec_as_it_is_when_it_commits(api):
    from fleet import services

    create(api, env={"A": "1"})
    stale = Service.objects.get()  # read by a deploy that is slow to take the lock
    assert (
        api.post("/api/services/web/deploy", {"env": {"A": "2"}}, format="json").status_code == 202
    )
    deployment, created = services.deploy_changes(stale, {"image": "app:2"})
    assert created and deployment.revision == 3
    assert (deployment.spec["image"], deployment.spec["env"]) == ("app:2", {"A": "2"})


def test_a_partial_deploy_that_no_longer_fits_the_current_spec_is_a_conflict(api):
    from fleet import services

    create(api)
    stale = Service.objects.get()
    api.post("/api/services/web/deploy", {"env": {"TOKEN": "x"}}, format="json")
    with pytest.raises(services.ServiceError, match="secrets: TOKEN is also in env"):
        services.deploy_changes(stale, {"secrets": {"TOKEN": "y"}})
    assert Deployment.objects.count() == 2


def test_the_deployments_come_in_pages_newest_first(api):
    create(api)
    for tag in ("2", "3", "4"):
        response = api.post("/api/services/web/deploy", {"image": f"app:{tag}"}, format="json")
        assert response.status_code == 202
    first = api.get("/api/deployments/?service=web&limit=3").json()
    assert [d["revision"] for d in first["results"]] == [4, 3, 2]
    assert first["previous"] is None
    rest = api.get(first["next"]).json()
    assert [d["revision"] for d in rest["results"]] == [1]
    assert rest["next"] is None
    assert len(api.get("/api/deployments/").json()["results"]) == 4


def test_a_body_over_the_limit_is_a_413_before_it_is_read(api, settings):
    settings.FLEET_API_MAX_BODY = 1000
    before = (Service.objects.count(), Event.objects.count())
    padded = {**SPEC, "env": {"PAD": "x" * 1000}}
    response = api.post("/api/services/", padded, format="json")
    assert response.status_code == 413
    assert "at most 1000 bytes" in response.json()["detail"]
    assert (Service.objects.count(), Event.objects.count()) == before
    assert api.post("/api/services/", SPEC, format="json").status_code == 201


def test_the_default_limit_takes_a_large_real_spec_and_refuses_a_flood(api, settings):
    assert settings.FLEET_API_MAX_BODY == 1_048_576
    env = {f"VAR_{i}": "v" * 250 for i in range(200)}  # some 52 kB: a big real service
    response = api.post("/api/services/", {**SPEC, "env": env}, format="json")
    assert response.status_code == 201, response.json()
    flood = {**SPEC, "name": "flood", "env": {"PAD": "x" * 1_048_576}}
    assert api.post("/api/services/", flood, format="json").status_code == 413
    assert not Service.objects.filter(name="flood").exists()
