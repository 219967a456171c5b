"""Hostile input at every API operation, generated from Fleet's own OpenAPI schema.

Schemathesis makes valid and invalid requests (wrong types, huge and odd strings,
NUL bytes, missing and extra fields) and sends them in-process to the WSGI app,
as an admin with a token so that they get past authentication to validation.
Every answer must be below 500, and a rejected request must leave the database
exactly as it was.
"""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

from fleet.models import Deployment, Event, EventKind, ImageCheck, Node, Replica, Service, Webhook
from fleet.services import webhooks
from fleet.services.spec import ServiceSpecSerializer
from tests.conftest import tls_material, token_for

pytestmark = pytest.mark.django_db

MODELS = (Node, Service, Deployment, Replica, Event, Webhook, ImageCheck)
# Names the fixture creates; most generated path names are swapped for one of these so
# that requests reach the validation of a real object rather than stopping at a 404.
EXISTING = {"/api/nodes/": "n1", "/api/services/": "web"}

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = WSGIHandler()


def snapshot():
    """Every row of the fleet's tables, in full, in a stable order."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in MODELS}


@pytest.fixture
def fleet_rows(db):
    """A node, a service with two revisions (the first good), a replica and some events."""
    node = Node.objects.create(
        name="n1", endpoint="tcp://127.0.0.1:1", labels={"zone": "a"}, **tls_material()
    )
    spec = ServiceSpecSerializer(data={"name": "web", "image": "busybox:1"})
    spec.is_valid(raise_exception=True)
    data = spec.validated_data
    service = Service.objects.create(name="web", replicas=1)
    fields = {k: v for k, v in data.items() if k not in ("name", "replicas")}
    good = Deployment.objects.create(
        service=service, revision=1, spec=fields, status=Deployment.Status.SUCCEEDED
    )
    current = Deployment.objects.create(
        service=service, revision=2, spec={**fields, "image": "busybox:2"}
    )
    service.current_deployment = current
    service.save()
    Replica.objects.create(service=service, deployment=good, slot=0, node=node)
    Event.objects.record(EventKind.SERVICE_CREATED, service=service, new="busybox:1")
    Event.objects.record(EventKind.SERVICE_SCALED, service=service, old="0", new="1")
    # Without its event, which would change the event tests' counts.
    Webhook.objects.create(service=service, name="ci", digest=webhooks.digest_of("x" * 43))


@pytest.fixture
def token(admin_user):
    """The admin's API token, on a connection the app leaves open between requests."""
    # As Django's test client does: the test's transaction must outlive each request.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield token_for(admin_user)
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def aim_at_existing(case):
    """Point most cases at the fixture's objects; keep a third with their generated name."""
    name = (case.path_parameters or {}).get("name")
    if name is None:
        return
    prefix = next((p for p in EXISTING if case.path.startswith(p)), None)
    if prefix and len(str(name)) % 3:
        case.path_parameters["name"] = EXISTING[prefix]


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_request_crashes_the_api_or_half_applies(case, fleet_rows, token):
    aim_at_existing(case)
    with transaction.atomic():
        before = snapshot()
        response = case.call(headers={"Authorization": f"Token {token}"})
        after = snapshot()
        # Each example starts from the fixture's rows again.
        transaction.set_rollback(True)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
    if 400 <= response.status_code < 500:
        assert after == before, f"{case.method} {case.formatted_path} was refused but changed rows"
    case.validate_response(
        response,
        checks=[
            schemathesis.checks.not_a_server_error,
            schemathesis.checks.content_type_conformance,
            schemathesis.checks.response_schema_conformance,
        ],
    )


# Regressions for what the fuzzing found.


@pytest.mark.parametrize("body", ["null", "true", "1", '"web"'])
@pytest.mark.parametrize("path", ["/api/services/web/", "/api/services/web/deploy"])
def test_a_body_that_is_not_an_object_is_a_400_not_a_crash(api, fleet_rows, path, body):
    before = snapshot()
    send = api.patch if path.endswith("web/") else api.post
    response = send(path, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Send a JSON object."]}
    assert snapshot() == before


@pytest.mark.parametrize(
    "body", ["[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000], ids=["array", "object"]
)
@pytest.mark.parametrize("path", ["/api/services/", "/api/services/web/deploy", "/api/nodes/"])
def test_a_body_nested_deeper_than_the_decoder_goes_is_a_400(api, fleet_rows, path, body):
    """Python's JSON decoder gives up past some thousand levels (RecursionError): that is
    a malformed body, not a server error."""
    before = snapshot()
    response = api.post(path, body, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert snapshot() == before


@pytest.mark.parametrize("position", ["garbage", "\x00", "2026-13-45 00:00:00", ""])
def test_a_forged_event_cursor_is_a_404_not_a_crash(api, fleet_rows, position):
    import base64
    from urllib.parse import urlencode

    cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()
    response = api.get("/api/events/", {"cursor": cursor})
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor"}


def test_a_real_event_cursor_still_pages(api, fleet_rows):
    first = api.get("/api/events/", {"limit": 1}).json()
    second = api.get(first["next"]).json()
    assert [e["kind"] for e in first["results"] + second["results"]] == [
        EventKind.SERVICE_SCALED,
        EventKind.SERVICE_CREATED,
    ]


@pytest.mark.parametrize(
    "path", ["/api/nodes/n1%00/", "/api/services/web%00/scale", "/nodes/n1%00/", "/services/WEB/"]
)
def test_a_path_that_cannot_name_anything_is_a_404(api, admin_client, fleet_rows, path):
    client = api if path.startswith("/api/") else admin_client
    send = client.post if path.endswith("scale") else client.get
    response = send(path)
    assert response.status_code == 404


def test_a_label_value_with_nul_is_a_400(api, fleet_rows):
    before = snapshot()
    response = api.patch("/api/nodes/n1/", {"labels": {"zone": "a\x00"}}, format="json")
    assert response.status_code == 400
    assert "labels" in response.json()
    assert snapshot() == before


@pytest.mark.parametrize(
    ("since", "status"),
    [
        ("2000-01-01T00:00:00+22:00", 200),  # Python takes it; PostgreSQL alone would not
        ("0001-01-01T00:00:00+23:00", 400),  # before the year 1 in UTC
        ("9999-12-31T23:59:59-23:00", 400),  # after the year 9999 in UTC
        ("2000-01-01T00:00:00+24:00", 400),
    ],
)
def test_an_event_time_filter_with_an_extreme_offset_is_answered(api, fleet_rows, since, status):
    response = api.get("/api/events/", {"since": since})
    assert response.status_code == status
    if status == 400:
        assert "since" in response.json()


def test_an_event_time_filter_with_an_offset_still_filters(api, fleet_rows):
    import datetime

    newest = Event.objects.order_by("-created_at").first().created_at
    plus_22 = datetime.timezone(datetime.timedelta(hours=22))
    later = (newest + datetime.timedelta(seconds=1)).astimezone(plus_22)
    assert api.get("/api/events/", {"since": later.isoformat()}).json()["results"] == []
    assert len(api.get("/api/events/", {"until": later.isoformat()}).json()["results"]) == 2


@pytest.mark.parametrize("labels", [[], None, "zone", {"zone": 1}])
def test_labels_that_are_not_an_object_of_strings_are_a_400(api, fleet_rows, labels):
    before = snapshot()
    response = api.patch("/api/nodes/n1/", {"labels": labels}, format="json")
    assert response.status_code == 400
    assert snapshot() == before


@pytest.fixture
def hook(fleet_rows):
    """The path of a real webhook of web: hostile bodies reach its validation."""
    _, secret = webhooks.create(Service.objects.get(name="web"), "hostile")
    return f"/hooks/deploy/{secret}"


@pytest.mark.parametrize(
    ("body", "kind", "status"),
    [
        ("null", "application/json", 400),
        ("[]", "application/json", 400),
        ('{"image": null}', "application/json", 400),
        ('{"tag": "\\u0000"}', "application/json", 400),
        ('{"env": {"A": "\\u0000"}}', "application/json", 400),
        ('{"env": {"A": 1}}', "application/json", 400),
        ('{"image": "' + "a" * 300 + '"}', "application/json", 400),
        ('{"tag": "v2", "tag": {}}', "application/json", 400),
        ("\xff\xfe", "application/json", 400),
        ("{" * 5000, "application/json", 400),
        ('{"tag": "v2"}', "text/plain", 415),
        ('{"tag": "v2"}', "multipart/form-data; boundary=x", 415),
    ],
)
def test_a_hostile_body_at_a_real_webhook_is_refused_and_changes_nothing(
    client, hook, body, kind, status
):
    before = snapshot()
    response = client.post(hook, body.encode("latin-1"), content_type=kind)
    assert response.status_code == status, response.content
    assert snapshot() == before


def test_an_update_auto_that_is_not_true_or_false_is_a_400_and_changes_nothing(api, fleet_rows):
    before = snapshot()
    for auto in ("true", 1, None, "yes", [True], {"x": 1}):
        patched = api.patch("/api/services/web/", {"update": {"auto": auto}}, format="json")
        deployed = api.post("/api/services/web/deploy", {"update": {"auto": auto}}, format="json")
        for response in (patched, deployed):
            assert response.status_code == 400, (auto, response.content)
            assert "auto" in response.json()["update"]
    assert snapshot() == before


def test_an_image_check_or_update_of_an_unknown_service_is_a_404(api, fleet_rows):
    before = snapshot()
    for path in ("image-check", "image-update"):
        assert api.post(f"/api/services/nope/{path}").status_code == 404
        assert api.get(f"/api/services/nope/{path}").status_code in (404, 405)
        assert api.post(f"/api/services/web%00/{path}").status_code == 404
    assert snapshot() == before


def test_a_hostile_image_update_body_is_a_400_and_changes_nothing(api, fleet_rows):
    before = snapshot()
    bodies = [
        "null",
        "[]",
        '"sha256"',
        '{"digest": "sha256:abc"}',
        '{"digest": null}',
        '{"digest": "sha256:' + "A" * 64 + '"}',
        '{"digest": "sha256:' + "a" * 64 + '\\u0000"}',
        '{"image": "busybox:2"}',
    ]
    for body in bodies:
        response = api.post("/api/services/web/image-update", body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
    assert snapshot() == before


def test_an_image_update_with_nothing_on_offer_is_a_409_and_changes_nothing(api, fleet_rows):
    before = snapshot()
    response = api.post("/api/services/web/image-update", {}, format="json")
    assert response.status_code == 409
    assert "No image update is available for web" in response.json()["detail"]
    assert snapshot() == before


def test_an_image_update_naming_another_digest_than_the_one_on_offer_is_a_409(api, fleet_rows):
    ImageCheck.objects.create(
        service=Service.objects.get(name="web"),
        image="busybox:2",
        outcome="update_available",
        update_digest="sha256:" + "b" * 64,
    )
    before = snapshot()
    body = {"digest": "sha256:" + "c" * 64}
    response = api.post("/api/services/web/image-update", body, format="json")
    assert response.status_code == 409
    assert "sha256:" + "b" * 64 in response.json()["detail"]
    assert snapshot() == before
