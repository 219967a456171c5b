"""The admin panel: node actions write events, the event log is read-only."""

import pytest

from fleet.models import Event, EventKind, Node
from tests.conftest import tls_material

TLS = tls_material()
pytestmark = pytest.mark.django_db


@pytest.fixture
def node():
    return Node.objects.create(name="edge-1", endpoint="tcp://127.0.0.1:2375")


@pytest.fixture
def admin_client_(client, admin_user):
    client.force_login(admin_user)
    return client


def test_the_node_list_shows_status_availability_and_labels(admin_client_, node):
    page = admin_client_.get("/admin/fleet/node/").content.decode()
    assert "edge-1" in page
    assert "unknown" in page and "active" in page


def test_the_drain_action_drains_and_records_who(admin_client_, node):
    admin_client_.post(
        "/admin/fleet/node/", {"action": "drain", "_selected_action": [node.pk]}, follow=True
    )
    assert Node.objects.get().availability == "drain"
    event = Event.objects.get()
    assert (event.kind, event.actor, event.via) == (
        EventKind.NODE_AVAILABILITY_CHANGED,
        "root",
        "admin",
    )


def test_adding_a_node_with_a_malformed_endpoint_shows_an_error_and_saves_nothing(
    admin_client_,
):
    response = admin_client_.post(
        "/admin/fleet/node/add/",
        {"name": "edge-9", "endpoint": "http://nowhere", "labels": "{}", "availability": "active"},
    )
    assert response.status_code == 200
    assert "must start with unix://, tcp:// or ssh://" in response.content.decode()
    assert not Node.objects.exists()
    assert not Event.objects.exists()


def test_the_tls_key_is_never_rendered_and_kept_when_left_blank(admin_client_):
    key, cert = TLS["tls_key"], TLS["tls_cert"]
    node = Node.objects.create(name="tls-1", endpoint="tcp://127.0.0.1:2376", **TLS)
    url = f"/admin/fleet/node/{node.pk}/change/"
    assert key.splitlines()[1] not in admin_client_.get(url).content.decode()
    admin_client_.post(
        url,
        {
            "name": "tls-1",
            "endpoint": "tcp://127.0.0.1:2376",
            "labels": '{"zone": "b"}',
            "availability": "active",
            "tls_ca": TLS["tls_ca"],
            "tls_cert": cert,
            "tls_key": "",
        },
    )
    node.refresh_from_db()
    assert node.tls_key == key
    assert node.labels == {"zone": "b"}
    assert "PRIVATE" not in Event.objects.get().reason


def test_a_viewer_sees_a_node_read_only_without_its_tls_key(client, viewer):
    key = "-----BEGIN PRIVATE KEY-----\nsupersecret\n-----END PRIVATE KEY-----"
    node = Node.objects.create(name="tls-1", endpoint="tcp://127.0.0.1:2376", tls_key=key)
    client.force_login(viewer)
    page = client.get(f"/admin/fleet/node/{node.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "tcp://127.0.0.1:2376" in html  # the rest is shown
    assert "supersecret" not in html and "PRIVATE KEY" not in html
    assert "set (never shown)" in html


def test_the_ssh_key_is_never_rendered_kept_when_left_blank_and_shown_as_set_to_a_viewer(
    admin_client_, client, viewer
):
    from tests.integration.test_api_nodes import SSH

    fields = {"name": "ssh-1", "endpoint": "ssh://docker@127.0.0.1:2222", **SSH}
    node = Node.objects.create(**fields)
    url = f"/admin/fleet/node/{node.pk}/change/"
    secret = SSH["ssh_key"].splitlines()[1]
    page = admin_client_.get(url).content.decode()
    assert secret not in page and SSH["ssh_host_key"].split()[1] in page
    form = {**fields, "labels": '{"zone": "b"}', "availability": "active", "ssh_key": ""}
    assert admin_client_.post(url, form).status_code == 302
    node.refresh_from_db()
    assert (node.ssh_key, node.labels) == (SSH["ssh_key"], {"zone": "b"})
    assert "PRIVATE" not in Event.objects.get().reason
    client.force_login(viewer)
    shown = client.get(url).content.decode()
    assert secret not in shown and "PRIVATE KEY" not in shown
    assert "SSH private key" in shown and "set (never shown)" in shown


def test_events_are_read_only_and_filterable(admin_client_, node):
    Event.objects.record(EventKind.NODE_STATUS_CHANGED, node=node, old="unknown", new="ready")
    Event.objects.record(EventKind.NODE_STATUS_CHANGED, node="other-9", old="unknown", new="down")
    listing = admin_client_.get("/admin/fleet/event/?kind=node.status_changed&node=edge-1")
    assert listing.status_code == 200
    assert list(listing.context["cl"].queryset.values_list("node_name", flat=True)) == ["edge-1"]
    assert admin_client_.get("/admin/fleet/event/add/").status_code == 403
    event = Event.objects.get(node_name="edge-1")
    assert admin_client_.post(f"/admin/fleet/event/{event.pk}/delete/").status_code == 403


def test_the_admin_is_fleets_and_leads_back_to_the_dashboard(admin_client_):
    html = admin_client_.get("/admin/").content.decode()
    assert "Fleet admin" in html
    assert "Django administration" not in html
    assert 'href="/"' in html  # "View site": the dashboard's overview
