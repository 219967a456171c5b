"""Dashboard pages: login required, complete on a plain GET, actions guarded by permission."""

import pytest
from django.contrib.auth.models import User

from fleet.models import Event, EventKind, Node

pytestmark = pytest.mark.django_db


@pytest.fixture
def node():
    return Node.objects.create(
        name="edge-1",
        endpoint="tcp://127.0.0.1:2375",
        status=Node.Status.READY,
        engine_version="20.10.24",
        cpus=2,
        memory_bytes=8 * 1024**3,
        containers_running=5,
        labels={"zone": "a"},
    )


@pytest.mark.parametrize("url", ["/", "/nodes/edge-1/"])
def test_pages_send_anonymous_users_to_the_login_page(client, node, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_availability_changes_need_a_login(client, node):
    response = client.post("/nodes/edge-1/availability/", {"availability": "drain"})
    assert response.status_code == 302
    assert Node.objects.get().availability == "active"


def test_the_overview_lists_every_node_with_its_numbers(client, node, viewer):
    Node.objects.create(name="edge-2", endpoint="tcp://127.0.0.1:2376", status="down")
    client.force_login(viewer)
    page = client.get("/").content.decode()
    assert 'id="node-edge-1"' in page and 'id="node-edge-2"' in page
    assert "20.10.24" in page
    assert "8.0\xa0GB" in page
    assert "status-ready" in page and "status-down" in page
    assert '<span class="n">1</span> ready' in page
    assert '<span class="n">1</span> down' in page


def test_the_node_page_shows_engine_labels_and_events(client, node, viewer):
    Event.objects.record(EventKind.NODE_STATUS_CHANGED, node=node, old="down", new="ready")
    client.force_login(viewer)
    page = client.get("/nodes/edge-1/").content.decode()
    assert "tcp://127.0.0.1:2375" in page
    assert "zone=a" in page
    assert "node.status_changed" in page
    # A viewer sees no buttons it could not use.
    assert 'name="availability"' not in page


def test_an_unknown_node_page_is_404(client, viewer):
    client.force_login(viewer)
    assert client.get("/nodes/nope/").status_code == 404


def test_an_admin_drains_a_node_from_its_page(client, node, fleet_admin):
    client.force_login(fleet_admin)
    assert 'name="availability"' in client.get("/nodes/edge-1/").content.decode()
    response = client.post("/nodes/edge-1/availability/", {"availability": "drain"}, follow=True)
    assert "edge-1 is now drain" in response.content.decode()
    assert Node.objects.get().availability == "drain"
    event = Event.objects.get()
    assert (event.actor, event.via, event.new) == ("boss", "web", "drain")


def test_a_viewer_cannot_drain(client, node, viewer):
    client.force_login(viewer)
    response = client.post("/nodes/edge-1/availability/", {"availability": "drain"})
    assert response.status_code == 403
    assert Node.objects.get().availability == "active"
    assert not Event.objects.exists()


def test_a_bad_availability_is_an_error_on_the_page_and_changes_nothing(client, node, fleet_admin):
    client.force_login(fleet_admin)
    response = client.post("/nodes/edge-1/availability/", {"availability": "nap"}, follow=True)
    assert "Unknown availability" in response.content.decode()
    assert Node.objects.get().availability == "active"
    assert not Event.objects.exists()


def test_logging_in_leads_to_the_overview(client, node, viewer):
    response = client.post(
        "/login/", {"username": "viewer", "password": "viewer-pass-123"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/"
    assert 'id="node-edge-1"' in response.content.decode()


def test_a_user_without_a_role_is_told_so_and_sees_nothing(client, node, nobody):
    client.force_login(nobody)
    for url in ["/", "/nodes/edge-1/", "/services/nope/"]:
        response = client.get(url)
        assert response.status_code == 403, url
        assert "has no role" in response.content.decode()
        assert "edge-1" not in response.content.decode()


def test_a_wrong_password_shows_an_error(client):
    User.objects.create_user("ann", password="a-long-password-1")
    response = client.post("/login/", {"username": "ann", "password": "nope"})
    assert "didn't match" in response.content.decode()


def test_the_overview_and_service_page_show_services_and_their_replicas(client, node, viewer):
    from fleet import services
    from fleet.services.spec import ServiceSpecSerializer

    spec = ServiceSpecSerializer(data={"name": "web", "image": "demo:1", "replicas": 2})
    spec.is_valid(raise_exception=True)
    service = services.create(spec.validated_data)
    service.replica_set.create(
        deployment=service.current_deployment, slot=1, node=node, state="running"
    )
    client.force_login(viewer)
    overview = client.get("/").content.decode()
    assert 'id="service-web"' in overview
    assert "demo:1" in overview
    page = client.get("/services/web/").content.decode()
    assert "edge-1" in page
    assert "service.created" in page
    assert client.get("/services/nope/").status_code == 404
    client.logout()
    assert client.get("/services/web/").status_code == 302
