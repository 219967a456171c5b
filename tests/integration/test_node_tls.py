"""Nodes and TLS: plain TCP refused unless allowed (then shown as insecure), the server
always verified, keys sealed at rest and never left in files, the lab's engines on TLS only."""

import contextlib
import os
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection

from fleet import engine
from fleet.models import Event, Node
from tests.conftest import tls_material

pytestmark = pytest.mark.django_db

TLS = tls_material()
NODE = {"name": "edge-1", "endpoint": "tcp://127.0.0.1:2376", **TLS}


def stored_key(name):
    """The tls_key column as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tls_key FROM fleet_node WHERE name = %s", [name])
        return cursor.fetchone()[0]


def test_a_plain_tcp_node_is_refused_with_a_reason_that_names_the_setting(api):
    response = api.post(
        "/api/nodes/", {"name": "edge-1", "endpoint": "tcp://127.0.0.1:2375"}, format="json"
    )
    assert response.status_code == 400
    (reason,) = response.json()["endpoint"]
    assert "without TLS" in reason and "FLEET_ALLOW_PLAIN_TCP" in reason
    assert not Node.objects.exists()
    assert not Event.objects.exists()


def test_with_plain_tcp_allowed_a_node_is_accepted_and_shown_as_insecure_everywhere(
    api, client, admin_user, settings
):
    settings.FLEET_ALLOW_PLAIN_TCP = True  # the setting under test
    body = {"name": "plain-1", "endpoint": "tcp://127.0.0.1:2375"}
    response = api.post("/api/nodes/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["insecure"] is True
    api.post("/api/nodes/", NODE, format="json")
    listed = {n["name"]: n["insecure"] for n in api.get("/api/nodes/").json()}
    assert listed == {"edge-1": False, "plain-1": True}

    client.force_login(admin_user)
    overview = client.get("/").content.decode()
    row = overview.split('id="node-plain-1"')[1].split("</tr>")[0]
    assert "insecure" in row
    assert "insecure" not in overview.split('id="node-edge-1"')[1].split("</tr>")[0]
    assert "insecure: no TLS" in client.get("/nodes/plain-1/").content.decode()
    assert "insecure: no TLS" not in client.get("/nodes/edge-1/").content.decode()
    assert "insecure: plain TCP" in client.get("/admin/fleet/node/").content.decode()
    made = api.post("/api/services/", {"name": "web", "image": "demo:1"}, format="json")
    assert made.status_code == 201, made.json()
    by_node = client.get("/services/web/").content.decode()
    assert "insecure" in by_node.split('"replicas on plain-1"')[1].split("</h3>")[0]
    assert "insecure" not in by_node.split('"replicas on edge-1"')[1].split("</h3>")[0]


def test_a_client_certificate_without_the_servers_ca_is_refused(api):
    response = api.post("/api/nodes/", {**NODE, "tls_ca": ""}, format="json")
    assert response.status_code == 400
    assert "never uses TLS without verifying the server" in response.json()["tls_ca"][0]
    assert not Node.objects.exists()


def test_a_key_that_does_not_belong_to_the_certificate_is_refused(api):
    other = tls_material("other")
    response = api.post("/api/nodes/", {**NODE, "tls_key": other["tls_key"]}, format="json")
    assert response.status_code == 400
    assert "does not belong" in response.json()["tls_key"][0]
    assert not Node.objects.exists()


def test_the_tls_key_is_sealed_in_the_database_and_open_only_in_memory(api):
    assert api.post("/api/nodes/", NODE, format="json").status_code == 201
    raw = stored_key("edge-1")
    assert raw.startswith("sealed:v1:")
    assert "PRIVATE KEY" not in raw and TLS["tls_key"].splitlines()[1] not in raw
    assert Node.objects.get().tls_key == TLS["tls_key"]


def test_a_key_sealed_under_an_earlier_secrets_key_is_refused_with_a_reason(api, settings):
    Node.objects.create(**NODE)
    settings.FLEET_SECRETS_KEY = "another key"  # the key rotated since the node was stored
    node = Node.objects.get()
    with pytest.raises(engine.EngineError, match="FLEET_SECRETS_KEY"):
        engine.client(node, 3)
    response = api.patch("/api/nodes/edge-1/", {"labels": {"zone": "b"}}, format="json")
    assert response.status_code == 400
    assert "send the key again" in response.json()["tls_key"][0]
    assert stored_key("edge-1") == node.tls_key  # kept as it was, not sealed twice
    response = api.patch("/api/nodes/edge-1/", {"tls_key": TLS["tls_key"]}, format="json")
    assert response.status_code == 200, response.json()
    assert Node.objects.get().tls_key == TLS["tls_key"]


@pytest.fixture
def lab_entry(lab):
    return next(n for n in lab.status()["nodes"] if n["name"] == "lab-1")


def memfds():
    """This process's open anonymous in-memory files."""
    links = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
    return [link for link in links if link.startswith("/memfd:")]


@pytest.mark.lab
def test_fleet_reaches_a_lab_engine_over_verified_tls_and_leaves_no_key_in_any_file(
    lab_entry, monkeypatch
):
    from tests.system import lab_node

    # A system bundle in the environment must not widen whom Fleet trusts.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    before = set(Path("/tmp").glob("fleet-tls-*"))
    node = lab_node(lab_entry)
    info = engine.info(node, 10)
    assert info.engine_version
    client = engine.client(node, 10)
    client.api.close()  # every pooled connection gone: the next one handshakes afresh
    assert client.ping()
    context = client.api.get_adapter(client.api.base_url).context
    assert context.check_hostname  # the engine's certificate must name its address
    trusted = context.get_ca_certs()
    lab_name = os.environ.get("FLEET_LAB_NAME", "lab")
    assert [ca["subject"] for ca in trusted] == [((("commonName", f"fleet lab {lab_name}"),),)]
    assert set(Path("/tmp").glob("fleet-tls-*")) == before
    assert memfds() == []


@pytest.mark.lab
def test_a_burst_of_calls_as_wide_as_the_pool_keeps_every_connection_for_the_next(
    lab_entry, caplog
):
    from tests.system import lab_node

    # A connection the pool cannot keep is thrown away, and the next burst pays a new TLS
    # handshake on the engine for it (urllib3 says so in a warning).
    node = lab_node(lab_entry)
    with ThreadPoolExecutor(engine.POOL_SIZE) as pool:
        for _ in range(3):
            list(pool.map(lambda _: engine.ping(node, 10), range(engine.POOL_SIZE)))
    discarded = [r for r in caplog.records if "pool is full" in r.getMessage()]
    assert discarded == []


@pytest.mark.lab
def test_an_engine_whose_certificate_another_ca_signed_is_refused(lab_entry):
    from tests.system import lab_node

    node = lab_node(lab_entry)
    node.tls_ca = tls_material("stranger")["tls_ca"]
    with pytest.raises(engine.EngineUnreachable, match="certificate verify failed"):
        engine.info(node, 5)


@pytest.mark.lab
def test_the_lab_engines_answer_only_with_mutual_tls(lab_entry):
    address = lab_entry["endpoint"].split("//")[1].rsplit(":", 1)[0]
    with socket.socket() as plain:
        plain.settimeout(3)
        assert plain.connect_ex((address, 2375)) != 0  # nothing on the plain port
    # Without a client certificate the engine refuses the connection.
    context = ssl.create_default_context(cafile=lab_entry["tls"]["ca"])
    refused = pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED|BAD_CERTIFICATE")
    raw = socket.create_connection((address, 2376), timeout=5)
    with refused, context.wrap_socket(raw, server_hostname=address) as wrapped:
        wrapped.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        wrapped.recv(100)  # TLS 1.3: the refusal comes after the handshake
