"""The nodes and events API: authentication, validation, actions and their events."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.db import connection

from fleet.engine import ssh_keys
from fleet.models import Event, EventKind, Node
from tests.conftest import api_for, tls_material

pytestmark = pytest.mark.django_db

TLS = tls_material()
VALID = {"name": "edge-1", "endpoint": "tcp://127.0.0.1:2376", "labels": {"zone": "a"}, **TLS}
NODE_FIELDS = {
    "name",
    "endpoint",
    "insecure",
    "labels",
    "availability",
    "status",
    "engine_version",
    "api_version",
    "api_spoken",
    "os",
    "arch",
    "operating_system",
    "kernel_version",
    "storage_driver",
    "cgroup_version",
    "cpus",
    "memory_bytes",
    "containers_running",
    "last_seen_at",
    "last_error",
    "unreachable_since",
    "damped",
    "held_until",
    "hold_reason",
    "ssh_host_key",
    "ssh_host_fingerprint",
}


def make_node(name="edge-1", endpoint="tcp://127.0.0.1:2376", **fields):
    return Node.objects.create(name=name, endpoint=endpoint, **{**TLS, **fields})


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/nodes/"),
        ("post", "/api/nodes/"),
        ("get", "/api/nodes/edge-1/"),
        ("patch", "/api/nodes/edge-1/"),
        ("delete", "/api/nodes/edge-1/"),
        ("post", "/api/nodes/edge-1/drain"),
        ("post", "/api/nodes/edge-1/activate"),
        ("get", "/api/events/"),
        ("get", "/api/schema/"),
        ("get", "/api/docs/"),
    ],
)
def test_it_refuses_anonymous_requests(anon_api, method, url):
    make_node()
    response = getattr(anon_api, method)(url, {}, format="json")
    assert response.status_code in (401, 403)
    assert Node.objects.get().availability == Node.Availability.ACTIVE
    assert not Event.objects.exists()


def test_it_refuses_a_bad_token(anon_api):
    anon_api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert anon_api.get("/api/nodes/").status_code == 401


def test_a_token_is_issued_for_good_credentials_only(anon_api, admin_user):
    good = anon_api.post(
        "/api/auth/token/", {"username": "root", "password": "root-pass-123"}, format="json"
    )
    assert good.status_code == 200
    anon_api.credentials(HTTP_AUTHORIZATION=f"Token {good.json()['token']}")
    assert anon_api.get("/api/nodes/").status_code == 200

    bad = anon_api.post("/api/auth/token/", {"username": "root", "password": "x"}, format="json")
    assert bad.status_code == 400


def test_it_registers_a_node_with_exactly_the_documented_fields(api):
    response = api.post("/api/nodes/", VALID, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == NODE_FIELDS
    assert body["status"] == "unknown"
    assert body["availability"] == "active"
    assert body["labels"] == {"zone": "a"}
    event = Event.objects.get()
    assert (event.kind, event.node_name, event.actor, event.via) == (
        EventKind.NODE_REGISTERED,
        "edge-1",
        "root",
        "token",
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**VALID, "endpoint": "http://127.0.0.1:2375"}, "endpoint"),
        ({**VALID, "endpoint": "tcp://127.0.0.1"}, "endpoint"),
        ({**VALID, "endpoint": "unix://relative"}, "endpoint"),
        ({**VALID, "endpoint": ""}, "endpoint"),
        ({**VALID, "name": "Edge_1"}, "name"),
        ({**VALID, "name": ""}, "name"),
        ({**VALID, "labels": ["zone=a"]}, "labels"),
        ({**VALID, "labels": {"zone": 3}}, "labels"),
        ({**VALID, "availability": "asleep"}, "availability"),
        ({**VALID, "status": "ready"}, "status"),
        ({**VALID, "colour": "blue"}, "colour"),
        ({**VALID, "tls_cert": "not pem"}, "tls_cert"),
        ({**VALID, "tls_ca": "-----BEGIN X"}, "tls_ca"),
        ({**VALID, "tls_key": TLS["tls_key"].replace("MI", "XX")}, "tls_key"),
        ({**VALID, "endpoint": "ssh://me@127.0.0.1"}, "endpoint"),
        ({"name": "edge-1"}, "endpoint"),
    ],
)
def test_bad_input_gets_field_errors_and_saves_nothing(api, payload, field):
    response = api.post("/api/nodes/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Node.objects.exists()
    assert not Event.objects.exists()


def test_a_duplicate_name_is_refused(api):
    make_node(endpoint="tcp://127.0.0.1:2400")
    response = api.post("/api/nodes/", VALID, format="json")
    assert response.status_code == 400
    assert "already exists" in response.json()["name"][0]
    assert Node.objects.count() == 1
    assert not Event.objects.exists()


def test_a_duplicate_endpoint_is_refused(api):
    make_node(name="other")
    response = api.post("/api/nodes/", VALID, format="json")
    assert response.status_code == 400
    assert "endpoint" in response.json()


def test_it_updates_labels_and_records_what_changed(api):
    make_node()
    response = api.patch("/api/nodes/edge-1/", {"labels": {"zone": "b"}}, format="json")
    assert response.status_code == 200
    assert Node.objects.get().labels == {"zone": "b"}
    event = Event.objects.get()
    assert event.kind == EventKind.NODE_UPDATED
    assert "labels" in event.reason


def test_an_edit_writes_only_the_fields_it_changes(api):
    """The API and the admin load the node when the request begins; a status or hold the
    watch or a health check writes meanwhile is not undone by the edit's save."""
    from django.utils import timezone

    from fleet import nodes

    make_node()
    loaded = Node.objects.get()  # as the request loaded it: unknown, no hold
    held_until = timezone.now() + timezone.timedelta(minutes=5)
    Node.objects.filter(pk=loaded.pk).update(
        status="down", held_until=held_until, hold_reason="flapping"
    )
    nodes.update(loaded, {"labels": {"zone": "b"}})
    node = Node.objects.get()
    assert node.labels == {"zone": "b"}
    assert (node.status, node.held_until, node.hold_reason) == ("down", held_until, "flapping")


def test_a_node_cannot_be_renamed_or_have_its_status_set(api):
    make_node()
    assert api.patch("/api/nodes/edge-1/", {"name": "edge-2"}, format="json").status_code == 400
    assert api.patch("/api/nodes/edge-1/", {"status": "ready"}, format="json").status_code == 400
    node = Node.objects.get()
    assert (node.name, node.status) == ("edge-1", "unknown")
    assert not Event.objects.exists()


def test_tls_material_is_accepted_but_never_returned(api):
    response = api.post("/api/nodes/", {**VALID, "tls_key": TLS["tls_key"] + "\n"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["insecure"] is False
    key_body = TLS["tls_key"].splitlines()[1]
    for shown in (response, api.get("/api/nodes/edge-1/"), api.get("/api/nodes/")):
        assert key_body not in shown.content.decode()
        assert "PRIVATE KEY" not in shown.content.decode()
    assert Node.objects.get().tls_key == TLS["tls_key"]


def test_a_certificate_without_its_key_is_refused(api):
    response = api.post("/api/nodes/", {**VALID, "tls_key": ""}, format="json")
    assert response.status_code == 400
    assert "tls_key" in response.json()
    assert not Node.objects.exists()


def test_drain_and_activate_change_availability_and_write_events(api):
    make_node()
    drained = api.post("/api/nodes/edge-1/drain")
    assert drained.status_code == 200
    assert drained.json()["availability"] == "drain"
    assert api.post("/api/nodes/edge-1/activate").json()["availability"] == "active"
    changes = [(e.old, e.new) for e in Event.objects.order_by("id")]
    assert changes == [("active", "drain"), ("drain", "active")]


def test_draining_twice_writes_one_event(api):
    make_node()
    api.post("/api/nodes/edge-1/drain")
    api.post("/api/nodes/edge-1/drain")
    assert Event.objects.count() == 1


def test_lifting_a_hold_lets_a_flapping_node_take_replicas_again_and_says_so(api, operator):
    from datetime import timedelta

    from django.utils import timezone

    held = {"held_until": timezone.now() + timedelta(minutes=5), "hold_reason": "went down 4x"}
    make_node(status=Node.Status.READY, **held)
    assert not Node.objects.get().schedulable
    assert api_for(operator).post("/api/nodes/edge-1/release-hold").status_code == 403
    assert Node.objects.get().held
    lifted = api.post("/api/nodes/edge-1/release-hold")
    assert lifted.status_code == 200
    assert (lifted.json()["held_until"], lifted.json()["hold_reason"]) == (None, "")
    node = Node.objects.get()
    assert not node.held and node.schedulable
    [event] = Event.objects.all()
    assert (event.kind, event.node_name) == (EventKind.NODE_UPDATED, "edge-1")
    assert event.reason == "hold lifted (was: went down 4x)"
    # Nothing to lift: a clear 400, and nothing more is written.
    again = api.post("/api/nodes/edge-1/release-hold")
    assert again.status_code == 400
    assert "edge-1 is not held out of placement" in again.json()["detail"]
    assert Event.objects.count() == 1


def test_delete_removes_the_node_and_keeps_its_history(api):
    make_node()
    api.post("/api/nodes/edge-1/drain")
    assert api.delete("/api/nodes/edge-1/").status_code == 204
    assert not Node.objects.exists()
    kinds = list(Event.objects.filter(node_name="edge-1").values_list("kind", flat=True))
    assert kinds == [EventKind.NODE_REMOVED, EventKind.NODE_AVAILABILITY_CHANGED]


def test_an_unknown_node_is_404(api):
    assert api.get("/api/nodes/nope/").status_code == 404
    assert api.post("/api/nodes/nope/drain").status_code == 404


def test_a_viewer_can_read_but_not_act(viewer):
    make_node()
    client = api_for(viewer)
    assert client.get("/api/nodes/").status_code == 200
    assert client.post("/api/nodes/", {**VALID, "name": "x"}, format="json").status_code == 403
    assert client.post("/api/nodes/edge-1/drain").status_code == 403
    assert client.delete("/api/nodes/edge-1/").status_code == 403
    assert Node.objects.get().availability == "active"
    assert not Event.objects.exists()


def test_an_operator_cannot_change_nodes_but_an_admin_can(operator, fleet_admin):
    make_node()
    assert api_for(operator).post("/api/nodes/edge-1/drain").status_code == 403
    assert api_for(operator).delete("/api/nodes/edge-1/").status_code == 403
    assert Node.objects.get().availability == "active"
    assert api_for(fleet_admin).post("/api/nodes/edge-1/drain").status_code == 200
    assert Node.objects.get().availability == "drain"


def test_events_are_newest_first_and_filter_by_node_and_kind(api):
    make_node("a", "tcp://127.0.0.1:2401")
    make_node("b", "tcp://127.0.0.1:2402")
    api.post("/api/nodes/a/drain")
    api.post("/api/nodes/b/drain")
    api.post("/api/nodes/a/activate")
    api.patch("/api/nodes/b/", {"labels": {"x": "y"}}, format="json")

    everything = api.get("/api/events/").json()["results"]
    assert [(e["node"], e["new"]) for e in everything][:3] == [
        ("b", ""),
        ("a", "active"),
        ("b", "drain"),
    ]
    only_a = api.get("/api/events/", {"node": "a"}).json()["results"]
    assert [e["new"] for e in only_a] == ["active", "drain"]
    updates = api.get("/api/events/", {"kind": "node.updated"}).json()["results"]
    assert [e["node"] for e in updates] == ["b"]
    assert api.get("/api/events/", {"kind": "nonsense"}).status_code == 400


def test_the_schema_and_docs_are_served_to_logged_in_users(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/nodes/{name}/drain" in paths or "/api/nodes/{name}/drain/" in paths
    assert api.get("/api/docs/").status_code == 200


def ssh_material():
    """A node's SSH fields: a private key Fleet would log in with, and a host's public key."""
    key, host = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = host.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return {"ssh_key": private, "ssh_host_key": public.decode()}


SSH = ssh_material()
SSH_NODE = {"name": "edge-2", "endpoint": "ssh://docker@127.0.0.1:2222", **SSH}


def test_an_ssh_node_keeps_its_key_sealed_and_shows_only_the_host_key(api, client, admin_user):
    body = {**SSH_NODE, "ssh_host_key": f"127.0.0.1 {SSH['ssh_host_key']} a comment"}
    response = api.post("/api/nodes/", body, format="json")
    assert response.status_code == 201, response.json()
    fingerprint = ssh_keys.host_key(SSH["ssh_host_key"]).fingerprint
    key_body = SSH["ssh_key"].splitlines()[1]
    for shown in (response, api.get("/api/nodes/edge-2/"), api.get("/api/nodes/")):
        assert key_body not in shown.content.decode()
        assert "PRIVATE KEY" not in shown.content.decode()
    read = api.get("/api/nodes/edge-2/").json()
    assert (read["ssh_host_key"], read["ssh_host_fingerprint"]) == (
        SSH["ssh_host_key"],
        fingerprint,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT ssh_key FROM fleet_node WHERE name = 'edge-2'")
        assert cursor.fetchone()[0].startswith("sealed:v1:")
    assert Node.objects.get().ssh_key == SSH["ssh_key"].strip()  # as every text field keeps it
    client.force_login(admin_user)
    page = client.get("/nodes/edge-2/").content.decode()
    assert f"(SSH, host key <code>{fingerprint}</code>)" in page and key_body not in page


@pytest.mark.parametrize(
    ("payload", "field", "says"),
    [
        ({**SSH_NODE, "ssh_key": ""}, "ssh_key", "private key Fleet logs in with"),
        ({**SSH_NODE, "ssh_key": "hunter2"}, "ssh_key", "-----BEGIN"),
        ({**SSH_NODE, "ssh_key": SSH["ssh_host_key"]}, "ssh_key", "-----BEGIN"),
        ({**SSH_NODE, "ssh_host_key": "ssh-ed25519 AAAA"}, "ssh_host_key", "does not hold"),
        ({**SSH_NODE, "ssh_host_key": SSH["ssh_key"]}, "ssh_host_key", "one line"),
        ({**SSH_NODE, "endpoint": "ssh://127.0.0.1"}, "endpoint", "ssh://USER@HOST"),
        ({**VALID, "ssh_key": SSH["ssh_key"]}, "ssh_key", "only to ssh:// endpoints"),
    ],
)
def test_bad_ssh_material_is_a_400_naming_the_field_and_saves_nothing(api, payload, field, says):
    response = api.post("/api/nodes/", payload, format="json")
    assert response.status_code == 400
    assert says in " ".join(response.json()[field])
    assert not Node.objects.exists()
    assert not Event.objects.exists()


def test_an_ssh_key_sealed_under_an_earlier_secrets_key_is_refused_with_a_reason(api, settings):
    from fleet import engine

    Node.objects.create(**SSH_NODE)
    settings.FLEET_SECRETS_KEY = "another key"  # the key rotated since the node was stored
    node = Node.objects.get()
    with pytest.raises(engine.EngineError, match="FLEET_SECRETS_KEY"):
        engine.client(node, 3)
    response = api.patch("/api/nodes/edge-2/", {"labels": {"zone": "b"}}, format="json")
    assert response.status_code == 400
    assert "send the key again" in response.json()["ssh_key"][0]
    response = api.patch("/api/nodes/edge-2/", {"ssh_key": SSH["ssh_key"]}, format="json")
    assert response.status_code == 200, response.json()
    assert Node.objects.get().ssh_key == SSH["ssh_key"].strip()
