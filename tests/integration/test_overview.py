"""The overview: the fleet's health at a glance, filtered tables, and a first run that helps."""

import re

import pytest

from fleet import services
from fleet.models import Node, Replica
from fleet.services.spec import ServiceSpecSerializer

pytestmark = pytest.mark.django_db


def make_service(name, replicas, states=()):
    spec = ServiceSpecSerializer(data={"name": name, "image": "demo:1", "replicas": replicas})
    spec.is_valid(raise_exception=True)
    service = services.create(spec.validated_data)
    for slot, state in enumerate(states, start=1):
        Replica.objects.create(
            service=service, deployment=service.current_deployment, slot=slot, state=state
        )
    return service


@pytest.fixture
def fleet_rows():
    Node.objects.create(
        name="edge-1", endpoint="tcp://127.0.0.1:2375", status="ready", labels={"zone": "a"}
    )
    Node.objects.create(name="edge-2", endpoint="tcp://127.0.0.1:2376", status="down")
    Node.objects.create(
        name="edge-3", endpoint="tcp://127.0.0.1:2377", status="ready", availability="drain"
    )
    web = make_service("web", 2, ["running", "running"])
    web.deployments.update(status="succeeded")
    api = make_service("api", 3, ["running", "exited"])
    api.deployments.update(status="succeeded")
    make_service("new-one", 1)  # pending: deploying


def hidden_rows(html):
    return sorted(re.findall(r'<tr id="(\w+-[\w-]+)"[^>]* hidden>', html))


def test_the_tiles_count_nodes_and_services_by_state(client, viewer, fleet_rows):
    client.force_login(viewer)
    response = client.get("/")
    glance = response.context["glance"]
    assert glance["nodes"] == {"ready": 2, "unreachable": 0, "down": 1, "drained": 1}
    assert glance["services"] == {"healthy": 1, "degraded": 1, "failed": 0, "deploying": 1}
    assert [s.name for s in glance["rollouts"]] == ["new-one"]
    html = response.content.decode()
    assert 'href="?node_status=down#nodes"' in html
    assert 'href="?service_status=degraded#services"' in html


def test_a_tile_leads_to_its_rows_and_the_rest_are_hidden_not_dropped(client, viewer, fleet_rows):
    client.force_login(viewer)
    html = client.get("/?node_status=down").content.decode()
    assert hidden_rows(html) == ["node-edge-1", "node-edge-3"]
    html = client.get("/?node_status=drained&service_status=degraded").content.decode()
    assert hidden_rows(html) == ["node-edge-1", "node-edge-2", "service-new-one", "service-web"]
    # Every row is there for the tiles to count; the glance is the whole fleet's.
    assert client.get("/?node_status=down").context["glance"]["nodes"]["ready"] == 2


def test_the_search_finds_nodes_by_name_or_label(client, viewer, fleet_rows):
    client.force_login(viewer)
    assert hidden_rows(client.get("/?node_q=zone=a").content.decode()) == [
        "node-edge-2",
        "node-edge-3",
    ]
    assert hidden_rows(client.get("/?service_q=AP").content.decode()) == [
        "service-new-one",
        "service-web",
    ]


def test_each_service_row_has_one_mark_per_replica_coloured_by_state_and_health(
    client, viewer, fleet_rows
):
    Replica.objects.filter(service__name="api", slot=1).update(health="healthy")
    Replica.objects.filter(service__name="api", slot=2).update(health="unhealthy")
    client.force_login(viewer)
    html = client.get("/").content.decode()
    row = re.search(r'<tr id="service-api".*?</tr>', html, re.S).group(0)
    marks = re.findall(r'class="mark rep-(\w+) health-(\w+)', row)
    assert marks == [("running", "healthy"), ("exited", "unhealthy")]
    assert 'aria-label="1 of 3 replicas serving"' in row


def test_the_overview_costs_the_same_queries_however_big_the_fleet(
    client, viewer, fleet_rows, django_assert_max_num_queries
):
    client.force_login(viewer)
    client.get("/")
    with django_assert_max_num_queries(12) as small:
        client.get("/")
    for n in range(10):
        Node.objects.create(name=f"more-{n}", endpoint=f"tcp://127.0.0.1:{3000 + n}")
        make_service(f"more-{n}", 2, ["running", "pending"])
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get("/")


def test_a_first_run_explains_and_offers_the_demo_to_operators(client, viewer, operator, settings):
    client.force_login(viewer)
    html = client.get("/").content.decode()
    assert "No nodes yet." in html and "lab up" in html and "POST /api/nodes" in html
    assert "Deploy the demo image" not in html  # no node to run it on yet
    Node.objects.create(name="edge-1", endpoint="tcp://127.0.0.1:2375", status="ready")
    html = client.get("/").content.decode()
    assert "No services yet." in html
    assert "Deploy the demo image" in html  # in the page, hidden from a viewer by its role
    client.force_login(operator)
    response = client.get("/")
    assert response.context["can_change"] is True
    # The lab's demo image, wherever this run's lab (FLEET_LAB_SUBNET) put its registry.
    demo = f'name="image" value="{settings.FLEET_DEFAULT_IMAGE}"'
    assert demo in response.content.decode()
