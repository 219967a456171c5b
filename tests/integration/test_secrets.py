"""Secret environment values: sealed at rest, shown to nobody, logged nowhere, kept on deploys."""

import json
import logging

import pytest
from django.test import override_settings

from fleet.access import sealing
from fleet.models import Deployment, Event
from tests.conftest import api_for

pytestmark = pytest.mark.django_db

IMAGE = "10.250.8.1:5000/fleet/demo:1"
SECRET = "hunter2-correct-horse-battery"
OTHER = "s3cond-Secret-value-0042"


def create(api, **changes):
    body = {"name": "web", "image": IMAGE, "replicas": 1, "secrets": {"DB_PASSWORD": SECRET}}
    response = api.post("/api/services/", {**body, **changes}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def stored():
    """Every stored spec and event, as the database holds them."""
    specs = json.dumps(list(Deployment.objects.values_list("spec", flat=True)))
    events = json.dumps(list(Event.objects.values()), default=str)
    return specs + events


def test_a_secret_is_sealed_at_rest_and_masked_in_every_answer(api, caplog):
    caplog.set_level(logging.DEBUG)
    body = create(api)
    assert body["secrets"] == {"DB_PASSWORD": sealing.MASK}
    spec = Deployment.objects.get().spec
    assert spec["secrets"]["DB_PASSWORD"].startswith(sealing.PREFIX)
    assert sealing.open_value(spec["secrets"]["DB_PASSWORD"]) == SECRET
    assert SECRET not in stored()
    answers = [
        api.get("/api/services/").content,
        api.get("/api/services/web/").content,
        api.get("/api/deployments/").content,
        api.get("/api/events/").content,
    ]
    for answer in answers:
        assert b"DB_PASSWORD" in answer or b"service.created" in answer
        assert SECRET.encode() not in answer
        assert spec["secrets"]["DB_PASSWORD"].encode() not in answer  # not even sealed
    assert SECRET not in caplog.text


def test_unchanged_secrets_make_no_revision_and_changes_go_name_by_name(api):
    create(api, secrets={"DB_PASSWORD": SECRET, "API_TOKEN": OTHER})
    # Sending the same value again is no change.
    same = api.post("/api/services/web/deploy", {"secrets": {"DB_PASSWORD": SECRET}}, format="json")
    assert same.status_code == 200, same.json()
    assert Deployment.objects.count() == 1
    # A change to one secret keeps the others, and its event names it without its value.
    changed = api.post("/api/services/web/deploy", {"secrets": {"API_TOKEN": "new"}}, format="json")
    assert changed.status_code == 202, changed.json()
    assert changed.json()["spec"]["secrets"] == dict.fromkeys(
        ["DB_PASSWORD", "API_TOKEN"], "********"
    )
    latest = Deployment.objects.get(revision=2).spec["secrets"]
    assert sealing.open_all(latest) == {"DB_PASSWORD": SECRET, "API_TOKEN": "new"}
    assert Event.objects.filter(reason="changed secrets").exists()
    # An image-only deploy carries them over untouched.
    api.post("/api/services/web/deploy", {"image": IMAGE.replace(":1", ":2")}, format="json")
    assert Deployment.objects.get(revision=3).spec["secrets"] == latest
    # null removes one.
    removed = api.post("/api/services/web/deploy", {"secrets": {"API_TOKEN": None}}, format="json")
    assert removed.json()["spec"]["secrets"] == {"DB_PASSWORD": "********"}
    assert SECRET not in stored() and OTHER not in stored()


def test_a_secret_rotated_while_another_deploy_waits_for_the_lock_stays_rotated(api):
    from fleet import services
    from fleet.models import Service

    create(api)
    stale = Service.objects.get()  # an image deploy read the service, then waited for the lock
    rotated = api.post(
        "/api/services/web/deploy", {"secrets": {"DB_PASSWORD": OTHER}}, format="json"
    )
    assert rotated.status_code == 202, rotated.json()
    deployment, created = services.deploy_changes(stale, {"image": IMAGE[:-1] + "2"})
    assert created and deployment.revision == 3
    assert sealing.open_all(deployment.spec["secrets"]) == {"DB_PASSWORD": OTHER}
    assert deployment.spec["image"] == IMAGE[:-1] + "2"


@pytest.mark.parametrize(
    "secrets",
    [
        {"1BAD": "x"},
        {"OK": 5},
        {"OK": ["x"]},
        {"PATH": "x"},  # also in env below
        "DB_PASSWORD=x",
        {"NEW": None},  # nothing to remove on a new service
    ],
)
def test_bad_secrets_get_field_errors_and_change_nothing(api, secrets):
    body = {"name": "web", "image": IMAGE, "env": {"PATH": "/bin"}, "secrets": secrets}
    response = api.post("/api/services/", body, format="json")
    assert response.status_code == 400
    assert "secrets" in response.json()
    assert not Deployment.objects.exists() and not Event.objects.exists()


def test_a_value_sealed_with_another_key_is_refused_not_passed_on(api):
    with override_settings(FLEET_SECRETS_KEY="another-key"):
        foreign = sealing.seal("planted")
    response = api.post(
        "/api/services/", {"name": "web", "image": IMAGE, "secrets": {"X": foreign}}, format="json"
    )
    assert response.status_code == 400
    assert "send its value again" in str(response.json()["secrets"]["X"])
    assert not Deployment.objects.exists()


def test_after_a_key_change_a_deploy_asks_for_the_values_then_takes_them(api):
    create(api)
    with override_settings(FLEET_SECRETS_KEY="rotated"):
        refused = api.post("/api/services/web/deploy", {"image": IMAGE[:-1] + "2"}, format="json")
        assert refused.status_code == 400
        assert "DB_PASSWORD" in refused.json()["secrets"]
        assert Deployment.objects.count() == 1
        sent = {"secrets": {"DB_PASSWORD": SECRET}}
        accepted = api.post("/api/services/web/deploy", sent, format="json")
        assert accepted.status_code == 202, accepted.json()
        stored = Deployment.objects.get(revision=2).spec["secrets"]
        assert sealing.open_all(stored) == {"DB_PASSWORD": SECRET}


def test_a_secret_sealed_with_a_lost_key_fails_the_replica_with_a_clear_error(api):
    from fleet.converge.containers import container_spec

    create(api)
    deployment = Deployment.objects.get()
    service = deployment.service
    replica = service.replica_set.create(deployment=deployment, slot=1)
    with override_settings(FLEET_SECRETS_KEY="rotated"), pytest.raises(sealing.SealError) as info:
        container_spec(replica)
    assert "deploy it again with its value" in str(info.value)


def test_the_admin_and_the_pages_never_show_a_secret(client, admin_user, viewer, api):
    create(api)
    deployment = Deployment.objects.get()
    change = f"/admin/fleet/service/{deployment.service_id}/change/"
    client.force_login(admin_user)
    for url in [
        change,
        f"/admin/fleet/deployment/{deployment.pk}/change/",
        "/services/web/",
    ]:
        page = client.get(url).content.decode()
        assert "DB_PASSWORD" in page, url
        assert SECRET not in page and deployment.spec["secrets"]["DB_PASSWORD"] not in page, url
    # Saving the admin form untouched keeps the secret as it was.
    page = client.get(change)
    options = page.context["adminform"].form.initial["options"]
    response = client.post(
        change,
        {"name": "web", "image": IMAGE, "replicas": 1, "options": json.dumps(options)},
    )
    assert response.status_code == 302
    assert Deployment.objects.count() == 1


def test_the_socket_snapshot_masks_secrets(api, redis_server):
    from dashboard.consumers import snapshot

    create(api)
    text = json.dumps(snapshot())
    assert "DB_PASSWORD" in text and SECRET not in text and sealing.PREFIX not in text


def test_a_viewer_sees_the_names_only(api, viewer):
    create(api)
    body = api_for(viewer).get("/api/services/web/").json()
    assert body["secrets"] == {"DB_PASSWORD": "********"}
