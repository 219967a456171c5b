"""Deploy webhooks: made (URL shown once), listed (never the secret), rotated, revoked,
role-checked, rate-limited; a call deploys through the same checks as the API's deploy,
and a bad secret or body changes nothing."""

import io
import json
import logging
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from fleet import services
from fleet.models import Deployment, Event, EventKind, Service, Webhook
from fleet.services import webhooks
from fleet.services.spec import ServiceSpecSerializer
from tests.conftest import api_for
from tests.system import wait_for

pytestmark = pytest.mark.django_db

IMAGE = "10.250.8.1:5000/fleet/demo:1"
HOOKS = "/api/services/web/webhooks/"


@pytest.fixture
def web(db):
    spec = ServiceSpecSerializer(data={"name": "web", "image": IMAGE, "env": {"A": "1"}})
    spec.is_valid(raise_exception=True)
    return services.create(spec.validated_data)


@pytest.fixture
def made(web, operator):
    """A webhook "ci" of web, made by an operator through the API: the answer, once."""
    response = api_for(operator).post(HOOKS, {"name": "ci"}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def path_of(url):
    return "/hooks/" + url.split("/hooks/", 1)[1]


def call(url, body=None, **extra):
    if body is None:  # as `curl -X POST URL` sends it: no body, no content type
        return APIClient().generic("POST", path_of(url), **extra)
    return APIClient().post(
        path_of(url), json.dumps(body), content_type="application/json", **extra
    )


def state():
    """Everything a call could change, as plain data."""
    rows = [Service, Deployment, Event, Webhook]
    return json.dumps([list(m.objects.values()) for m in rows], default=str, sort_keys=True)


def stored_rows():
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM fleet_webhook")
        return [" ".join(str(value) for value in row) for row in cursor.fetchall()]


def test_a_new_webhook_shows_its_url_once_and_stores_only_a_hash(made, operator):
    assert made["name"] == "ci" and made["service"] == "web" and made["created_by"] == "operator"
    assert made["url"].startswith("http://testserver/hooks/deploy/")
    secret = made["url"].rsplit("/", 1)[1]
    assert len(secret) >= 43
    assert all(secret not in row for row in stored_rows())
    listed = api_for(operator).get(HOOKS).json()
    assert listed == [{k: v for k, v in made.items() if k != "url"}]
    assert secret not in json.dumps(listed)
    event = Event.objects.get(kind=EventKind.WEBHOOK_CREATED)
    assert (event.actor, event.via, event.service_name) == ("operator", "token", "web")
    assert secret not in event.reason


def test_a_call_deploys_a_new_image_and_names_the_webhook_as_actor(made, viewer):
    response = call(made["url"], {"image": IMAGE.replace(":1", ":2")})
    assert response.status_code == 202, response.json()
    answer = response.json()
    deployment = Deployment.objects.get(pk=answer["deployment"])
    assert deployment.spec["image"].endswith(":2") and deployment.spec["env"] == {"A": "1"}
    assert (deployment.actor, deployment.via) == ("webhook:ci", "webhook")
    assert answer["url"] == f"http://testserver/api/deployments/{deployment.pk}"
    followed = api_for(viewer).get(answer["url"].removeprefix("http://testserver"))
    assert followed.json()["id"] == deployment.pk
    assert answer["revision"] == 2
    event = Event.objects.get(kind=EventKind.DEPLOYMENT_CREATED, new="revision 2")
    assert (event.actor, event.via) == ("webhook:ci", "webhook")
    assert Webhook.objects.get().last_used_at is not None


def test_a_tag_replaces_only_the_tag_of_the_current_image(made):
    assert call(made["url"], {"tag": "v2"}).status_code == 202
    assert Service.objects.get().spec["image"] == "10.250.8.1:5000/fleet/demo:v2"


def test_env_replaces_the_environment_and_no_body_changes_nothing(made):
    assert call(made["url"], {"env": {"B": "2"}}).status_code == 202
    assert Service.objects.get().spec["env"] == {"B": "2"}
    before = Deployment.objects.count()
    response = call(made["url"])
    assert response.status_code == 200  # the spec as it is: no new revision
    assert Deployment.objects.count() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image": "Not An Image"}, "image"),
        ({"image": 5}, "image"),
        ({"tag": "-bad"}, "tag"),
        ({"tag": "v2", "image": IMAGE}, "tag"),
        ({"env": {"1X": "a"}}, "env"),
        ({"env": ["A=1"]}, "env"),
        ({"replicas": 9}, "replicas"),
        ({"secrets": {"K": "v"}}, "secrets"),
        ([1, 2], "non_field_errors"),
        ("web", "non_field_errors"),
    ],
)
def test_a_bad_body_gets_field_errors_and_changes_nothing(made, body, field):
    before = state()
    response = call(made["url"], body)
    assert response.status_code == 400
    assert field in response.json()
    assert state() == before


def test_the_guard_rails_of_the_api_apply_to_a_call(made, settings):
    settings.FLEET_ALLOWED_REGISTRIES = ["10.250.8.1:5000"]  # the setting under test
    before = state()
    response = call(made["url"], {"image": "docker.io/library/busybox:1"})
    assert response.status_code == 400
    assert "FLEET_ALLOWED_REGISTRIES" in response.json()["image"][0]
    assert state() == before


def test_a_service_being_deleted_answers_409_and_changes_nothing(made):
    Service.objects.update(deleting=True)
    before = state()
    response = call(made["url"], {"tag": "v2"})
    assert response.status_code == 409
    assert state() == before  # the rate-limit claim went back with the rest


@pytest.mark.parametrize(
    "secret", ["", "x", "A" * 43, "A" * 43 + "/x", "%00" * 30, "../../api/services/web"]
)
def test_a_bad_secret_is_a_404_that_changes_nothing(made, secret):
    before = state()
    response = APIClient().post(f"/hooks/deploy/{secret}", {"tag": "v2"}, format="json")
    assert response.status_code == 404
    assert state() == before


def test_the_hook_takes_only_post_only_json_and_small_bodies(made, settings):
    path = path_of(made["url"])
    before = state()
    for method in ("get", "put", "patch", "delete"):
        assert getattr(APIClient(), method)(path).status_code == 405
    response = APIClient().post(path, "tag=v2", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert APIClient().post(path, "{", content_type="application/json").status_code == 400
    big = json.dumps({"env": {"A": "x" * settings.FLEET_WEBHOOK_MAX_BODY}})
    assert APIClient().post(path, big, content_type="application/json").status_code == 413
    assert state() == before


def test_the_hook_needs_no_csrf_token(made):
    client = APIClient(enforce_csrf_checks=True)
    assert client.post(path_of(made["url"]), {"tag": "v2"}, format="json").status_code == 202


def test_a_rotated_webhook_answers_only_at_its_new_url(made, operator):
    response = api_for(operator).post(f"{HOOKS}{made['id']}/rotate")
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["url"] != made["url"] and rotated["rotated_at"] is not None
    assert call(made["url"], {"tag": "v2"}).status_code == 404
    assert call(rotated["url"], {"tag": "v2"}).status_code == 202
    assert Event.objects.filter(kind=EventKind.WEBHOOK_ROTATED, actor="operator").count() == 1


def test_a_revoked_webhook_is_gone_and_its_url_404s(made, operator):
    response = api_for(operator).delete(f"{HOOKS}{made['id']}/")
    assert response.status_code == 204
    assert not Webhook.objects.exists()
    assert call(made["url"], {"tag": "v2"}).status_code == 404
    assert Event.objects.filter(kind=EventKind.WEBHOOK_REVOKED, actor="operator").count() == 1


def test_a_viewer_lists_webhooks_but_cannot_make_rotate_or_revoke_one(made, viewer):
    client = api_for(viewer)
    assert [w["name"] for w in client.get(HOOKS).json()] == ["ci"]
    before = state()
    assert client.post(HOOKS, {"name": "mine"}, format="json").status_code == 403
    assert client.post(f"{HOOKS}{made['id']}/rotate").status_code == 403
    assert client.delete(f"{HOOKS}{made['id']}/").status_code == 403
    assert state() == before


def test_an_admin_may_make_one_and_a_user_without_a_role_sees_none(web, fleet_admin, nobody):
    assert api_for(fleet_admin).post(HOOKS, {"name": "ci"}, format="json").status_code == 201
    assert api_for(nobody).get(HOOKS).status_code == 403
    assert APIClient().get(HOOKS).status_code == 401


@pytest.mark.parametrize(
    "body", [{"name": ""}, {"name": "x" * 65}, {}, {"name": "ci"}, {"name": ["ci"]}]
)
def test_a_bad_or_taken_name_is_a_400_that_makes_nothing(made, operator, body):
    before = state()
    response = api_for(operator).post(HOOKS, body, format="json")
    assert response.status_code == 400
    assert "name" in response.json()
    assert state() == before


def test_webhooks_of_a_missing_service_or_id_are_404(made, operator):
    client = api_for(operator)
    assert client.get("/api/services/nope/webhooks/").status_code == 404
    assert client.post("/api/services/nope/webhooks/", {"name": "x"}).status_code == 404
    assert client.post(f"{HOOKS}999/rotate").status_code == 404


def test_calls_beyond_the_rate_get_429_until_the_window_is_over(made, settings):
    # The setting under test: a window of 1 s, so that the test waits 1 s and not a minute.
    settings.FLEET_WEBHOOK_RATE = 2
    settings.FLEET_WEBHOOK_RATE_WINDOW = 1.0
    assert call(made["url"], {"tag": "v2"}).status_code == 202
    assert call(made["url"], {"tag": "v3"}).status_code == 202
    before = state()
    refused = call(made["url"], {"tag": "v4"})
    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    assert state() == before
    time.sleep(1.05)
    assert call(made["url"], {"tag": "v4"}).status_code == 202


def test_the_rate_window_starts_afresh_once_it_is_over(made, settings):
    settings.FLEET_WEBHOOK_RATE = 1  # the setting under test, at its smallest
    webhook = Webhook.objects.get()
    start = timezone.now()
    webhooks.claim(webhook, now=start)
    with pytest.raises(webhooks.RateLimited) as refused:
        webhooks.claim(webhook, now=start + timedelta(seconds=10))
    assert refused.value.retry_after == 50
    webhooks.claim(webhook, now=start + timedelta(seconds=60))
    assert Webhook.objects.values_list("window_calls", "window_started_at").get() == (
        1,
        start + timedelta(seconds=60),
    )


def test_no_secret_reaches_the_logs(made, caplog, settings):
    settings.FLEET_WEBHOOK_RATE = 1
    secret = made["url"].rsplit("/", 1)[1]
    caplog.set_level("DEBUG")
    call(made["url"], {"tag": "v2"})
    assert call(made["url"], {"tag": "v3"}).status_code == 429
    assert call(made["url"], {"image": "Bad"}).status_code == 400
    assert APIClient().get(path_of(made["url"])).status_code == 405
    assert secret not in caplog.text


@pytest.mark.lab
@pytest.mark.django_db(transaction=True)
def test_a_webhook_call_rolls_out_a_new_tag_on_the_lab_until_it_succeeds(fleet):
    fleet.create(
        "web",
        replicas=2,
        ports=[{"container": 80}],
        update={"monitor": 0},
        healthcheck={
            "command": ["CMD", "wget", "-q", "-O", "-", "http://127.0.0.1/health"],
            "interval": 0.5,
            "timeout": 2,
            "retries": 2,
        },
    )
    wait_for(lambda: fleet.service("web")["healthy_replicas"] == 2, 60, message="web on 1")
    made = fleet.api.post(HOOKS, {"name": "ci"}, format="json").json()
    response = call(made["url"], {"tag": "2"})
    assert response.status_code == 202, response.json()
    deployment = fleet.wait_deployment(response.json()["deployment"], "succeeded")
    assert deployment["spec"]["image"] == fleet.images["demo_v2"]
    assert (deployment["actor"], deployment["via"]) == ("webhook:ci", "webhook")
    containers = [(c, node) for node, cs in fleet.containers("web").items() for c in cs]
    assert len(containers) == 2
    assert {fleet.answers(container, node) for container, node in containers} == {"2"}


def test_the_service_page_lists_webhooks_and_offers_changes_to_an_operator(made, client, operator):
    client.force_login(operator)
    page = client.get("/services/web/").content.decode()
    assert 'data-form="webhook"' in page and "Make a webhook" in page
    assert '<th scope="row">ci</th>' in page
    assert f'data-url="/api/services/web/webhooks/{made["id"]}/rotate"' in page
    assert made["url"].rsplit("/", 1)[1] not in page


def test_the_service_page_shows_a_viewer_the_webhooks_without_the_controls(made, client, viewer):
    client.force_login(viewer)
    page = client.get("/services/web/").content.decode()
    assert '<th scope="row">ci</th>' in page
    assert 'data-form="webhook"' not in page and "webhook-rotate" not in page


def test_the_admin_makes_a_webhook_and_shows_its_url_only_on_the_answer(web, client, operator):
    client.force_login(operator)
    assert client.get("/admin/fleet/webhook/add/").status_code == 200
    response = client.post("/admin/fleet/webhook/add/", {"service": web.pk, "name": "cd"})
    assert response.status_code == 200
    page = response.content.decode()
    url = page.split("<code>", 1)[1].split("</code>", 1)[0]
    assert url.startswith("http://testserver/hooks/deploy/")
    assert call(url, {"tag": "v2"}).status_code == 202
    for path in (
        "/admin/fleet/webhook/",
        f"/admin/fleet/webhook/{Webhook.objects.get().pk}/change/",
    ):
        shown = client.get(path)
        assert shown.status_code == 200
        assert (
            "cd" in shown.content.decode() and url.rsplit("/", 1)[1] not in shown.content.decode()
        )
    again = client.post("/admin/fleet/webhook/add/", {"service": web.pk, "name": "cd"})
    assert again.status_code == 200 and "already exists" in again.content.decode()
    assert Webhook.objects.count() == 1
    event = Event.objects.get(kind=EventKind.WEBHOOK_CREATED)
    assert (event.actor, event.via) == ("operator", "admin")


def test_the_admin_rotates_and_revokes_but_a_viewer_may_only_look(made, client, viewer, operator):
    client.force_login(viewer)
    assert client.get("/admin/fleet/webhook/").status_code == 200
    assert client.get("/admin/fleet/webhook/add/").status_code == 403
    before = state()
    action = {"action": "rotate", "_selected_action": [made["id"]]}
    client.post("/admin/fleet/webhook/", action)
    assert state() == before
    client.force_login(operator)
    page = client.post("/admin/fleet/webhook/", action).content.decode()
    new_url = page.split("<code>", 1)[1].split("</code>", 1)[0]
    assert call(made["url"], {"tag": "v2"}).status_code == 404
    assert call(new_url, {"tag": "v2"}).status_code == 202
    client.post("/admin/fleet/webhook/", {**action, "action": "revoke"})
    assert call(new_url, {"tag": "v3"}).status_code == 404
    kinds = Event.objects.filter(via="admin").values_list("kind", flat=True)
    assert sorted(kinds) == [EventKind.WEBHOOK_REVOKED, EventKind.WEBHOOK_ROTATED]


def test_a_server_error_during_a_call_logs_no_secret(made, monkeypatch):
    """Django logs a server error with the request's path, which holds the secret; so would
    a traceback whose message names the path. The fault is made here (the lookup raises), since
    a call that reaches a real server error must not exist: what is checked is the log."""
    secret = made["url"].rsplit("/", 1)[1]

    def broken(value):
        raise RuntimeError(f"no answer for /hooks/deploy/{value}")

    monkeypatch.setattr(webhooks, "find", broken)
    # What LOGGING's handler writes, read by pointing that very handler at a buffer.
    (handler,) = logging.getLogger().handlers[:1]
    monkeypatch.setattr(handler, "stream", io.StringIO())
    client = APIClient(raise_request_exception=False)
    response = client.generic("POST", path_of(made["url"]))
    assert response.status_code == 500
    logged = handler.stream.getvalue()
    assert "Internal Server Error: /hooks/deploy/<secret>" in logged
    assert "RuntimeError: no answer for /hooks/deploy/<secret>" in logged  # the traceback
    assert secret not in logged


def test_a_deeply_nested_body_is_refused_as_bad_json(made):
    before = state()
    response = call(
        made["url"], None, data="[" * 5000 + "]" * 5000, content_type="application/json"
    )
    assert response.status_code == 400
    assert state() == before
