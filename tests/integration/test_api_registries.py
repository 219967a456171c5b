"""Registry credentials through the API and the admin: admins keep them, a password is
sealed and never shown again, every change is audited without it, bad input changes
nothing, and a pull's login is the kept one for its image's registry."""

import pytest
from django.db import connection
from django.test import override_settings

from fleet.models import Event, EventKind, Registry
from fleet.services.registries import auth_for
from tests.conftest import api_for

pytestmark = pytest.mark.django_db

SECRET = "hunter22-s3cr3t-token"


def add(api, **fields):
    body = {"server": "registry.example.com:5000", "username": "ci", "password": SECRET, **fields}
    return api.post("/api/registries/", body, format="json")


def test_an_admin_keeps_credentials_and_never_sees_the_password_again(api):
    response = add(api)
    assert response.status_code == 201, response.json()
    made = response.json()
    assert set(made) == {
        "id",
        "server",
        "username",
        "ca",
        "ca_summary",
        "created_at",
        "updated_at",
    }
    assert (made["ca"], made["ca_summary"]) == ("", "")
    assert (made["server"], made["username"]) == ("registry.example.com:5000", "ci")
    for page in (api.get("/api/registries/"), api.get(f"/api/registries/{made['id']}/")):
        assert page.status_code == 200 and SECRET not in page.content.decode()
    audit = Event.objects.get(kind=EventKind.REGISTRY_ADDED)
    assert "registry.example.com:5000" in audit.reason and "ci" in audit.reason
    assert SECRET not in audit.reason and audit.actor == "root"
    with connection.cursor() as cursor:  # sealed at rest
        cursor.execute("SELECT password FROM fleet_registry")
        assert SECRET not in cursor.fetchone()[0]
    login = {"username": "ci", "password": SECRET}
    assert auth_for("registry.example.com:5000/team/app:1") == login
    assert auth_for("registry.example.com/team/app:1") is None  # another server
    assert auth_for("team/app:1") is None


def test_a_new_password_replaces_the_kept_one_and_a_patch_without_it_keeps_it(api):
    made = add(api).json()
    url = f"/api/registries/{made['id']}/"
    assert api.patch(url, {"username": "deploy"}, format="json").status_code == 200
    assert auth_for("registry.example.com:5000/a") == {"username": "deploy", "password": SECRET}
    assert api.patch(url, {"password": "rotated-1"}, format="json").status_code == 200
    assert auth_for("registry.example.com:5000/a")["password"] == "rotated-1"
    changes = Event.objects.filter(kind=EventKind.REGISTRY_CHANGED).order_by("id")
    assert [e.reason.endswith("(password replaced)") for e in changes] == [False, True]
    assert all("rotated-1" not in e.reason and SECRET not in e.reason for e in changes)
    assert api.delete(url).status_code == 204
    assert not Registry.objects.exists()
    assert Event.objects.filter(kind=EventKind.REGISTRY_REMOVED).count() == 1
    assert auth_for("registry.example.com:5000/a") is None


def test_docker_hub_is_one_server_whatever_name_it_is_given(api):
    assert add(api, server="index.docker.io").json()["server"] == "docker.io"
    for image in ("redis", "library/redis:7", "docker.io/library/redis", "team/app"):
        assert auth_for(image) == {"username": "ci", "password": SECRET}
    refused = add(api, server="DOCKER.IO")
    assert refused.status_code == 400 and "kept already" in str(refused.json()["server"])


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"server": "https://ghcr.io"}, "server"),
        ({"server": "myteam"}, "server"),
        ({"server": ""}, "server"),
        ({"username": ""}, "username"),
        ({"password": ""}, "password"),
        ({"password": "two\nlines"}, "password"),
        ({"password": "x" * 5000}, "password"),
        ({"id": 7}, "id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ({"token": "x"}, "token"),
    ],
)
def test_bad_input_gets_a_400_naming_the_field_and_changes_nothing(api, fields, field):
    response = add(api, **fields)
    assert response.status_code == 400
    assert field in response.json()
    assert not Registry.objects.exists() and not Event.objects.exists()


def test_a_bad_patch_changes_nothing(api):
    made = add(api).json()
    url = f"/api/registries/{made['id']}/"
    for bad in ({"server": "a/b"}, {"password": ""}, {"username": "x" * 5000}):
        assert api.patch(url, bad, format="json").status_code == 400, bad
    row = Registry.objects.get()
    assert (row.server, row.username, row.password) == ("registry.example.com:5000", "ci", SECRET)
    assert not Event.objects.filter(kind=EventKind.REGISTRY_CHANGED).exists()


def test_a_viewer_lists_servers_and_users_but_changes_nothing(api, viewer, operator):
    made = add(api).json()
    for user in (viewer, operator):
        client = api_for(user)
        listed = client.get("/api/registries/")
        assert listed.status_code == 200 and SECRET not in listed.content.decode()
        assert [r["server"] for r in listed.json()] == ["registry.example.com:5000"]
        assert add(client, server="ghcr.io").status_code == 403
        url = f"/api/registries/{made['id']}/"
        assert client.patch(url, {"password": "x"}, format="json").status_code == 403
        assert client.delete(url).status_code == 403
    assert Registry.objects.get().password == SECRET


def test_anonymous_requests_are_refused(anon_api):
    assert anon_api.get("/api/registries/").status_code in (401, 403)
    assert add(anon_api).status_code in (401, 403)
    assert not Registry.objects.exists()


@override_settings(FLEET_REGISTRY_AUTH={"ghcr.io": {"username": "env", "password": "from-env"}})
def test_kept_credentials_win_over_the_setting_which_still_serves_the_others(api):
    assert auth_for("ghcr.io/org/app") == {"username": "env", "password": "from-env"}
    add(api, server="ghcr.io")
    assert auth_for("ghcr.io/org/app") == {"username": "ci", "password": SECRET}


def test_the_admin_never_shows_the_password_and_empty_keeps_it(admin_client):
    form = {"server": "ghcr.io", "username": "ci", "password": SECRET}
    assert admin_client.post("/admin/fleet/registry/add/", form).status_code == 302
    row = Registry.objects.get()
    page = admin_client.get(f"/admin/fleet/registry/{row.pk}/change/")
    assert page.status_code == 200 and SECRET not in page.content.decode()
    changed = {"server": "ghcr.io", "username": "deploy", "password": ""}
    assert admin_client.post(f"/admin/fleet/registry/{row.pk}/change/", changed).status_code == 302
    assert (Registry.objects.get().username, Registry.objects.get().password) == ("deploy", SECRET)
    bad = admin_client.post("/admin/fleet/registry/add/", {**form, "server": "https://x.io"})
    assert bad.status_code == 200 and "is a URL" in bad.content.decode()
    assert Registry.objects.count() == 1
    assert not any(SECRET in e.reason for e in Event.objects.all())


def test_a_ca_is_kept_as_pem_summed_up_and_a_bad_one_changes_nothing(api):
    from tests.unit.test_registry_ca import certificate

    _, pem = certificate("Registry CA")
    made = add(api, ca=pem)
    assert made.status_code == 201, made.json()
    assert made.json()["ca"] == pem and made.json()["ca_summary"].startswith("CN=Registry CA")
    url = f"/api/registries/{made.json()['id']}/"
    bad = api.patch(url, {"ca": "-----BEGIN CERTIFICATE-----\nnope"}, format="json")
    assert bad.status_code == 400 and "not PEM certificates" in bad.json()["ca"][0]
    assert Registry.objects.get().ca == pem
    refused = add(api, server="other.example.com", ca="garbage")
    assert refused.status_code == 400 and "ca" in refused.json()
    assert Registry.objects.count() == 1
    assert api.patch(url, {"ca": ""}, format="json").json()["ca_summary"] == ""
