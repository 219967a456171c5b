"""API tokens: stored hashed, named, optionally expiring, shown once; listed and revoked by
their owner; an admin may revoke anyone's but never read one."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from fleet.models import ApiToken, Event, EventKind
from tests.conftest import api_for

pytestmark = pytest.mark.django_db


def make_token(user, password, **fields):
    response = APIClient().post(
        "/api/auth/token/", {"username": user, "password": password, **fields}, format="json"
    )
    assert response.status_code == 200, response.json()
    return response.json()


def using(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def stored_rows():
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM fleet_apitoken")
        return [" ".join(str(value) for value in row) for row in cursor.fetchall()]


def test_a_token_is_named_shown_once_and_stored_only_as_a_hash(viewer):
    made = make_token("viewer", "viewer-pass-123", name="ci", expires_in=3600)
    assert set(made) == {"id", "name", "user", "created", "expiry", "token"}
    assert (made["name"], made["user"]) == ("ci", "viewer")
    assert made["expiry"] is not None
    assert using(made["token"]).get("/api/nodes/").status_code == 200
    (row,) = stored_rows()
    assert made["token"] not in row
    listed = using(made["token"]).get("/api/auth/tokens/").json()
    assert listed == [{k: made[k] for k in ("id", "name", "user", "created", "expiry")}]
    event = Event.objects.get(kind=EventKind.USER_TOKEN_CREATED)
    assert (event.actor, event.via) == ("viewer", "api") and "'ci'" in event.reason


def test_without_expires_in_a_token_lasts_until_revoked(viewer):
    assert make_token("viewer", "viewer-pass-123")["expiry"] is None


def test_an_expired_token_is_refused(viewer):
    made = make_token("viewer", "viewer-pass-123", expires_in=60)
    ApiToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))
    assert using(made["token"]).get("/api/nodes/").status_code == 401


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"name": "x" * 65}, "name"), ({"expires_in": 5}, "expires_in"), ({"name": ""}, "name")],
)
def test_bad_token_requests_get_field_errors_and_make_nothing(viewer, fields, field):
    response = APIClient().post(
        "/api/auth/token/",
        {"username": "viewer", "password": "viewer-pass-123", **fields},
        format="json",
    )
    assert response.status_code == 400
    assert field in response.json()
    assert not ApiToken.objects.exists() and not Event.objects.exists()


def test_the_owner_lists_only_their_tokens_and_revokes_one(viewer, operator):
    mine = make_token("viewer", "viewer-pass-123", name="laptop")
    other = make_token("viewer", "viewer-pass-123", name="ci")
    theirs = make_token("operator", "operator-pass-123")
    names = [t["name"] for t in using(mine["token"]).get("/api/auth/tokens/").json()]
    assert sorted(names) == ["ci", "laptop"]
    gone = using(mine["token"]).delete(f"/api/auth/tokens/{other['id']}/")
    assert gone.status_code == 204
    assert using(other["token"]).get("/api/nodes/").status_code == 401
    assert using(mine["token"]).get("/api/nodes/").status_code == 200
    # Someone else's token is not even there for a user who is not an admin.
    assert using(mine["token"]).delete(f"/api/auth/tokens/{theirs['id']}/").status_code == 404
    assert using(theirs["token"]).get("/api/nodes/").status_code == 200
    event = Event.objects.get(kind=EventKind.USER_TOKEN_REVOKED)
    assert event.actor == "viewer" and "'ci' of viewer" in event.reason


def test_an_admin_sees_and_revokes_anyones_token_through_the_api_but_never_reads_one(
    viewer, fleet_admin
):
    theirs = make_token("viewer", "viewer-pass-123", name="ci")
    admin = api_for(fleet_admin)
    listed = admin.get("/api/auth/tokens/").json()
    ci = next(t for t in listed if t["name"] == "ci")
    assert ci["user"] == "viewer" and "token" not in ci
    assert theirs["token"] not in admin.get("/api/auth/tokens/").content.decode()
    assert admin.delete(f"/api/auth/tokens/{theirs['id']}/").status_code == 204
    assert using(theirs["token"]).get("/api/nodes/").status_code == 401
    assert Event.objects.get(kind=EventKind.USER_TOKEN_REVOKED).actor == "boss"


def test_the_admin_panel_lists_tokens_without_them_and_revokes(client, viewer, fleet_admin):
    theirs = make_token("viewer", "viewer-pass-123", name="ci")
    token = ApiToken.objects.get(name="ci")
    client.force_login(fleet_admin)
    listing = client.get("/admin/fleet/apitoken/").content.decode()
    detail = client.get(f"/admin/fleet/apitoken/{token.pk}/change/").content.decode()
    for page in (listing, detail):
        assert "ci" in page
        assert theirs["token"] not in page and token.digest not in page
        assert theirs["token"][:15] not in page  # not even the part knox looks tokens up by
    assert client.get("/admin/fleet/apitoken/add/").status_code == 403
    response = client.post(
        "/admin/fleet/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}
    )
    assert response.status_code == 302
    assert using(theirs["token"]).get("/api/nodes/").status_code == 401
    event = Event.objects.get(kind=EventKind.USER_TOKEN_REVOKED)
    assert (event.actor, event.via) == ("boss", "admin")


def test_a_viewer_cannot_see_the_token_admin(client, viewer):
    make_token("viewer", "viewer-pass-123", name="ci")
    client.force_login(viewer)
    assert client.get("/admin/fleet/apitoken/").status_code == 403
