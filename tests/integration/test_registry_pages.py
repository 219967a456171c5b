"""The registries page: every role sees which registries have a login, admins keep them,
and a password never appears on a page once saved."""

import pytest

from fleet.models import Event, EventKind, Registry

pytestmark = pytest.mark.django_db

SECRET = "hunter22-s3cr3t-token"
FORM = {"server": "registry.example.com:5000", "username": "ci", "password": SECRET}


def test_an_admin_keeps_a_login_on_the_page_and_never_sees_its_password(client, admin_user):
    client.force_login(admin_user)
    assert client.post("/registries/", FORM).status_code == 302
    row = Registry.objects.get()
    assert (row.server, row.username, row.password) == ("registry.example.com:5000", "ci", SECRET)
    listed = client.get("/registries/")
    assert "registry.example.com:5000" in listed.content.decode()
    edit = client.get(f"/registries/{row.pk}/")
    for page in (listed, edit):
        assert page.status_code == 200 and SECRET not in page.content.decode()
    # Empty keeps the kept password; a new one replaces it, once, in the audit trail.
    kept = {**FORM, "username": "deploy", "password": ""}
    assert client.post(f"/registries/{row.pk}/", kept).status_code == 302
    assert (Registry.objects.get().username, Registry.objects.get().password) == ("deploy", SECRET)
    new = {**FORM, "username": "deploy", "password": "rotated-1"}
    assert client.post(f"/registries/{row.pk}/", new).status_code == 302
    assert Registry.objects.get().password == "rotated-1"
    changed = Event.objects.filter(kind=EventKind.REGISTRY_CHANGED).order_by("id")
    reasons = [e.reason for e in changed]
    assert [r.endswith("(password replaced)") for r in reasons] == [False, True]
    assert client.post(f"/registries/{row.pk}/", {"delete": "1"}).status_code == 302
    assert not Registry.objects.exists()
    assert not any(SECRET in e.reason or "rotated-1" in e.reason for e in Event.objects.all())


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("server", "https://ghcr.io", "is a URL"),
        ("server", "myteam", "Docker Hub account"),
        ("username", "", "This field is required"),
        ("password", "", "Give the password or token"),
    ],
)
def test_bad_input_is_shown_where_it_is_wrong_and_changes_nothing(
    client, admin_user, field, value, says
):
    client.force_login(admin_user)
    page = client.post("/registries/", {**FORM, field: value})
    assert page.status_code == 400 and says in page.content.decode()
    assert SECRET not in page.content.decode()  # not even echoed back in the form
    assert not Registry.objects.exists() and not Event.objects.exists()


def test_a_viewer_sees_servers_and_users_but_no_form_and_cannot_post(client, viewer, operator):
    Registry.objects.create(server="ghcr.io", username="ci", password=SECRET)
    row = Registry.objects.get()
    for user in (viewer, operator):
        client.force_login(user)
        page = client.get("/registries/")
        body = page.content.decode()
        assert page.status_code == 200 and "ghcr.io" in body and SECRET not in body
        assert "Add a registry" not in body and f"/registries/{row.pk}/" not in body
        assert client.post("/registries/", {**FORM, "server": "x.io"}).status_code == 403
        assert client.get(f"/registries/{row.pk}/").status_code == 403
        assert client.post(f"/registries/{row.pk}/", {"delete": "1"}).status_code == 403
    assert Registry.objects.count() == 1 and not Event.objects.exists()


def test_nobody_without_a_role_or_login_sees_the_page(client, nobody):
    assert client.get("/registries/").status_code == 302  # to the login page
    client.force_login(nobody)
    assert client.get("/registries/").status_code == 403
