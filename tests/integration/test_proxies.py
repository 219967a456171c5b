"""Behind a reverse proxy: X-Forwarded-For names the client for the login lockout and the
audit trail only when the request comes from a proxy in FLEET_TRUSTED_PROXIES."""

import ipaddress

import pytest
from django.conf import settings as django_settings
from django.test import Client

from fleet.models import Event
from tests.conftest import api_for

pytestmark = pytest.mark.django_db

PROXY = "127.0.0.1"
LIMIT = django_settings.FLEET_LOGIN_FAILURE_LIMIT


@pytest.fixture
def behind_proxy(settings):
    """The setting under test: the proxy on 127.0.0.1 is trusted."""
    settings.FLEET_TRUSTED_PROXIES = [ipaddress.ip_network(PROXY)]


def drain_as(user, remote, forwarded=None):
    """Drain a node through the API from `remote`, maybe forwarded for someone."""
    from fleet.models import Node
    from tests.conftest import tls_material

    node, _ = Node.objects.get_or_create(
        name="edge-1", defaults={"endpoint": "tcp://127.0.0.1:1", **tls_material()}
    )
    Node.objects.filter(pk=node.pk).update(availability="active")
    client = api_for(user)
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    assert client.post("/api/nodes/edge-1/drain", **extra).status_code == 200
    return Event.objects.latest("id")


def test_without_trusted_proxies_the_header_is_ignored(admin_user):
    event = drain_as(admin_user, PROXY, forwarded="198.51.100.7")
    assert event.address == PROXY


def test_a_trusted_proxy_names_the_client_in_the_audit_trail(admin_user, behind_proxy):
    event = drain_as(admin_user, PROXY, forwarded="198.51.100.7")
    assert event.address == "198.51.100.7"
    shown = api_for(admin_user).get("/api/events/").json()["results"][0]
    assert shown["address"] == "198.51.100.7"


def test_an_address_a_client_put_in_front_of_the_proxys_is_not_believed(admin_user, behind_proxy):
    # The client sent "X-Forwarded-For: 203.0.113.9"; the proxy appended the real address.
    event = drain_as(admin_user, PROXY, forwarded="203.0.113.9, 198.51.100.7")
    assert event.address == "198.51.100.7"


def test_a_request_from_an_untrusted_address_cannot_forward_for_anyone(admin_user, behind_proxy):
    event = drain_as(admin_user, "198.51.100.50", forwarded="203.0.113.9")
    assert event.address == "198.51.100.50"


def login(forwarded, password):
    client = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded)
    return client.post("/login/", {"username": "root", "password": password})


def test_behind_a_trusted_proxy_a_lockout_is_per_client_not_per_proxy(admin_user, behind_proxy):
    for _ in range(LIMIT):
        login("198.51.100.7", "wrong-password")
    assert login("198.51.100.7", "root-pass-123").status_code == 429
    assert login("198.51.100.8", "root-pass-123").status_code == 302


def test_without_trusted_proxies_every_client_of_the_proxy_shares_the_lockout(admin_user):
    for _ in range(LIMIT):
        login("198.51.100.7", "wrong-password")
    assert login("198.51.100.8", "root-pass-123").status_code == 429


def test_a_bad_trusted_proxies_setting_stops_start_up():
    import os
    import subprocess
    import sys

    from tests.system import ROOT

    result = subprocess.run(
        [sys.executable, "-c", "import fleet.settings"],
        cwd=ROOT,
        env={**os.environ, "FLEET_TRUSTED_PROXIES": "10.0.0.1,not-an-address"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "FLEET_TRUSTED_PROXIES" in result.stderr
