"""The ingress part of a service spec: host, port and path checked, one service per route."""

import pytest

from fleet import services
from fleet.services.spec import ServiceSpecSerializer

PORTS = [{"container": 80}]
INGRESS = {"host": "web.example.com", "port": 80}


def result(name="web", **fields):
    serializer = ServiceSpecSerializer(data={"name": name, "image": "busybox", **fields})
    return serializer.is_valid(), serializer.validated_data if serializer.is_valid() else (
        serializer.errors
    )


@pytest.mark.django_db
def test_an_ingress_gets_the_root_path_and_a_lowercase_host():
    ok, data = result(ports=PORTS, ingress={"host": "Web.Example.COM.", "port": 80})
    assert ok, data
    assert data["ingress"] == {"host": "web.example.com", "port": 80, "path": "/"}
    assert data["update"]["drain"] == 10


@pytest.mark.django_db
def test_an_ingress_port_must_be_published():
    ok, errors = result(ports=[{"container": 81}], ingress=INGRESS)
    assert not ok
    assert "Publish container port 80/tcp in ports" in str(errors["ingress"]["port"])


@pytest.mark.django_db
def test_an_ingress_on_a_udp_port_is_refused():
    ok, errors = result(ports=[{"container": 80, "protocol": "udp"}], ingress=INGRESS)
    assert not ok and "80/tcp" in str(errors["ingress"])


@pytest.mark.parametrize(
    ("ingress", "field"),
    [
        ({"host": "web example.com", "port": 80}, "host"),
        ({"host": "-web.example.com", "port": 80}, "host"),
        ({"host": "", "port": 80}, "host"),
        ({"host": "web.example.com", "port": 0}, "port"),
        ({"host": "web.example.com", "port": 70000}, "port"),
        ({"host": "web.example.com", "port": "80"}, "port"),
        ({"host": "web.example.com", "port": 80, "path": "api"}, "path"),
        ({"host": "web.example.com", "port": 80, "path": "/a b"}, "path"),
        ({"host": "web.example.com", "port": 80, "path": "/a\nb"}, "path"),
        ({"host": "web.example.com", "port": 80, "path": "/a;quit"}, "path"),
        ({"host": "web.example.com", "port": 80, "tls": True}, "tls"),
        ({"port": 80}, "host"),
    ],
)
def test_a_bad_ingress_is_refused_naming_its_field(ingress, field):
    ok, errors = result(ports=PORTS, ingress=ingress)
    assert not ok
    assert field in errors["ingress"], errors


@pytest.mark.parametrize("drain", [-1, 3601, "5", True])
def test_a_bad_drain_time_is_refused(drain):
    ok, errors = result(update={"drain": drain})
    assert not ok and "drain" in errors["update"]


@pytest.mark.django_db
def test_a_host_and_path_another_service_routes_are_refused():
    ok, data = result(name="web", ports=PORTS, ingress=INGRESS)
    services.create(data)
    ok, errors = result(name="shop", ports=PORTS, ingress={**INGRESS, "path": "/"})
    assert not ok
    assert "Service web already takes host web.example.com with path /" in str(errors["ingress"])


@pytest.mark.django_db
def test_the_same_host_with_another_path_or_the_same_service_again_is_fine():
    ok, data = result(name="web", ports=PORTS, ingress=INGRESS)
    services.create(data)
    assert result(name="api", ports=PORTS, ingress={**INGRESS, "path": "/api/"})[0]
    assert result(name="web", ports=PORTS, ingress=INGRESS)[0]  # its own route, redeployed
