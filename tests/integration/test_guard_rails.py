"""Optional guard rails on what operators run: images from allowed registries only
(FLEET_ALLOWED_REGISTRIES) and fixed host ports in a range (FLEET_PUBLISHED_PORTS), refused
with a 400 that names the setting, before anything changes. Each test sets what it tests."""

import os
import subprocess
import sys

import pytest

from fleet.models import Deployment, Event, Service
from fleet.services.spec import registry_of
from tests.system import ROOT

pytestmark = pytest.mark.django_db

LAB_IMAGE = "10.250.8.1:5000/fleet/demo:1"


@pytest.fixture
def lab_registry_only(settings):
    settings.FLEET_ALLOWED_REGISTRIES = ["10.250.8.1:5000"]


@pytest.fixture
def ports_8000s(settings):
    settings.FLEET_PUBLISHED_PORTS = (8000, 8999)


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("busybox", "docker.io"),
        ("library/nginx:1.25", "docker.io"),
        ("10.250.8.1:5000/fleet/demo:1", "10.250.8.1:5000"),
        ("Registry.Example/team/app:1", "registry.example"),
        ("localhost/app", "localhost"),
    ],
)
def test_the_registry_of_an_image_is_what_docker_pulls_from(image, registry):
    assert registry_of(image) == registry


def test_an_image_from_another_registry_is_refused_with_the_setting_named(api, lab_registry_only):
    response = api.post("/api/services/", {"name": "web", "image": "busybox:1"}, format="json")
    assert response.status_code == 400
    (reason,) = response.json()["image"]
    assert "FLEET_ALLOWED_REGISTRIES" in reason and "docker.io" in reason
    assert not Service.objects.exists() and not Event.objects.exists()


def test_an_image_from_an_allowed_registry_is_accepted(api, lab_registry_only):
    response = api.post("/api/services/", {"name": "web", "image": LAB_IMAGE}, format="json")
    assert response.status_code == 201, response.json()


def test_a_deploy_to_another_registry_is_refused_and_changes_nothing(api, lab_registry_only):
    api.post("/api/services/", {"name": "web", "image": LAB_IMAGE}, format="json")
    before = Deployment.objects.count(), Event.objects.count()
    response = api.post(
        "/api/services/web/deploy", {"image": "evil.example/miner:1"}, format="json"
    )
    assert response.status_code == 400
    assert "FLEET_ALLOWED_REGISTRIES" in response.json()["image"][0]
    assert (Deployment.objects.count(), Event.objects.count()) == before


def test_a_fixed_port_outside_the_range_is_refused_with_the_setting_named(api, ports_8000s):
    body = {"name": "web", "image": LAB_IMAGE, "ports": [{"container": 80, "published": 22}]}
    response = api.post("/api/services/", body, format="json")
    assert response.status_code == 400
    (reason,) = response.json()["ports"]["0"]["published"]
    assert "8000-8999" in reason and "FLEET_PUBLISHED_PORTS" in reason
    assert not Service.objects.exists()


def test_ports_inside_the_range_or_picked_by_docker_are_accepted(api, ports_8000s):
    ports = [{"container": 80, "published": 8080}, {"container": 81}]
    body = {"name": "web", "image": LAB_IMAGE, "ports": ports}
    response = api.post("/api/services/", body, format="json")
    assert response.status_code == 201, response.json()


def test_the_admins_service_form_keeps_to_the_same_guard_rails(
    client, admin_user, lab_registry_only, ports_8000s
):
    client.force_login(admin_user)
    form = {"name": "web", "image": "busybox:1", "replicas": "1", "options": "{}"}
    page = client.post("/admin/fleet/service/add/", form).content.decode()
    assert "FLEET_ALLOWED_REGISTRIES" in page
    ports = '{"ports": [{"container": 80, "published": 22}]}'
    page = client.post(
        "/admin/fleet/service/add/", {**form, "image": LAB_IMAGE, "options": ports}
    ).content.decode()
    assert "FLEET_PUBLISHED_PORTS" in page
    assert not Service.objects.exists() and not Event.objects.exists()


def test_by_default_any_registry_and_port_is_accepted(api):
    body = {"name": "web", "image": "busybox:1", "ports": [{"container": 80, "published": 80}]}
    assert api.post("/api/services/", body, format="json").status_code == 201


@pytest.mark.parametrize("value", ["8000-", "high-low", "9000-8000", "0-10", "1-70000"])
def test_a_bad_port_range_stops_start_up(value):
    result = subprocess.run(
        [sys.executable, "-c", "import fleet.settings"],
        cwd=ROOT,
        env={**os.environ, "FLEET_PUBLISHED_PORTS": value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "FLEET_PUBLISHED_PORTS" in result.stderr
