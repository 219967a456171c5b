"""Every role on every action, through every door: API, pages, admin and the live socket.

A refused action answers 403 (or is not offered) and leaves the database as it was.
"""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from fleet import services
from fleet.access import roles
from fleet.asgi import application
from fleet.models import Deployment, Event, Node, Replica, Service
from fleet.services.spec import ServiceSpecSerializer
from tests.conftest import api_for, tls_material, token_for, user_with_role

IMAGE = "10.250.8.1:5000/fleet/demo:1"
TLS = tls_material()
RANK = {None: 0, "viewer": 1, "operator": 2, "admin": 3}
ROLES = list(RANK)


def setup_fleet():
    """Two nodes, and a service with a succeeded revision 1, a current revision 2 and a
    replica in slot 1, so that every action has something to act on."""
    edge = Node.objects.create(name="edge-1", endpoint="tcp://127.0.0.1:2401", **TLS)
    Node.objects.create(name="spare", endpoint="tcp://127.0.0.1:2402", **TLS)
    spec = ServiceSpecSerializer(data={"name": "web", "image": IMAGE, "replicas": 1})
    spec.is_valid(raise_exception=True)
    service = services.create(spec.validated_data)
    Deployment.objects.filter(revision=1).update(status=Deployment.Status.SUCCEEDED)
    services.deploy(service, {**spec.validated_data, "image": IMAGE.replace(":1", ":2")})
    service.refresh_from_db()
    service.replica_set.create(
        deployment=service.current_deployment,
        slot=1,
        node=edge,
        state="running",
        container_id="c0ffee",
    )
    return service


def state():
    """Everything an action could change, as plain data."""
    rows = [
        Node.objects.values(),
        Service.objects.values(),
        Deployment.objects.values(),
        Replica.objects.values(),
        Event.objects.values(),
    ]
    return json.dumps([list(r) for r in rows], default=str, sort_keys=True)


def someone(role):
    return user_with_role(f"user-{role or 'none'}", role)


# (needed role, method, url, body, the status an allowed request gets)
API_ACTIONS = [
    ("viewer", "get", "/api/nodes/", None, 200),
    ("viewer", "get", "/api/nodes/edge-1/", None, 200),
    ("viewer", "get", "/api/services/", None, 200),
    ("viewer", "get", "/api/services/web/", None, 200),
    ("viewer", "get", "/api/services/web/replicas/", None, 200),
    ("viewer", "get", "/api/deployments/", None, 200),
    ("viewer", "get", "/api/events/", None, 200),
    ("viewer", "get", "/api/schema/", None, 200),
    ("operator", "post", "/api/services/", {"name": "api", "image": IMAGE}, 201),
    ("operator", "post", "/api/services/web/scale", {"replicas": 2}, 202),
    ("operator", "patch", "/api/services/web/", {"replicas": 3}, 202),
    ("operator", "post", "/api/services/web/deploy", {"env": {"A": "1"}}, 202),
    ("operator", "post", "/api/services/web/rollback", {}, 202),
    ("operator", "post", "/api/services/web/replicas/1/restart", {}, 202),
    ("operator", "delete", "/api/services/web/", None, 202),
    (
        "admin",
        "post",
        "/api/nodes/",
        {"name": "new", "endpoint": "tcp://127.0.0.1:2403", **TLS},
        201,
    ),
    ("admin", "patch", "/api/nodes/edge-1/", {"labels": {"zone": "a"}}, 200),
    ("admin", "post", "/api/nodes/edge-1/drain", {}, 200),
    ("admin", "patch", "/api/nodes/spare/", {"availability": "pause"}, 200),
    ("admin", "delete", "/api/nodes/spare/", None, 204),
]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("needed", "method", "url", "body", "code"),
    API_ACTIONS,
    ids=[f"{a[1]} {a[2]}" for a in API_ACTIONS],
)
def test_the_api_lets_each_role_do_exactly_its_actions(role, needed, method, url, body, code):
    setup_fleet()
    client = api_for(someone(role))
    before = state()
    response = getattr(client, method)(url, body, format="json")
    if RANK[role] >= RANK[needed]:
        assert response.status_code == code, response.content
        if method != "get":
            assert state() != before
            assert Event.objects.latest("pk").actor == f"user-{role}"
    else:
        assert response.status_code == 403, response.content
        assert state() == before


PAGES = [
    ("viewer", "/"),
    ("viewer", "/events/"),
    ("viewer", "/nodes/edge-1/"),
    ("viewer", "/services/web/"),
    ("viewer", "/api/docs/"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("needed", "url"), PAGES)
def test_pages_are_read_by_every_role_and_nobody_else(client, role, needed, url):
    setup_fleet()
    client.force_login(someone(role))
    response = client.get(url)
    assert response.status_code == (200 if RANK[role] >= RANK[needed] else 403)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_only_an_admin_changes_a_node_from_its_page(client, role):
    setup_fleet()
    client.force_login(someone(role))
    before = state()
    page = client.get("/nodes/edge-1/").content.decode()
    response = client.post("/nodes/edge-1/availability/", {"availability": "drain"})
    if role == "admin":
        assert 'name="availability"' in page
        assert response.status_code == 302
        assert Node.objects.get(name="edge-1").availability == "drain"
    else:
        assert 'name="availability"' not in page
        assert response.status_code == 403
        assert state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_pages_offer_service_controls_only_to_those_who_may_use_them(client, role):
    setup_fleet()
    client.force_login(someone(role))
    for url in ["/", "/services/web/"]:
        response = client.get(url)
        if RANK[role] == 0:
            assert response.status_code == 403
            continue
        can = 'data-can-change="1"' in response.content.decode()
        assert can == (RANK[role] >= RANK["operator"]), url


# The admin: (needed role, what it does, the request)
def admin_requests(service):
    node = Node.objects.get(name="edge-1")
    return {
        "see the index": ("viewer", "get", "/admin/", {}),
        "list nodes": ("viewer", "get", "/admin/fleet/node/", {}),
        "list events": ("viewer", "get", "/admin/fleet/event/", {}),
        "open a service": ("viewer", "get", f"/admin/fleet/service/{service.pk}/change/", {}),
        "scale up a service": (
            "operator",
            "post",
            "/admin/fleet/service/",
            {"action": "scale_up", "_selected_action": [service.pk]},
        ),
        "roll back a service": (
            "operator",
            "post",
            "/admin/fleet/service/",
            {"action": "roll_back", "_selected_action": [service.pk]},
        ),
        "drain a node": (
            "admin",
            "post",
            "/admin/fleet/node/",
            {"action": "drain", "_selected_action": [node.pk]},
        ),
        "add a node": (
            "admin",
            "post",
            "/admin/fleet/node/add/",
            {
                "name": "n2",
                "endpoint": "tcp://127.0.0.1:2404",
                "labels": "{}",
                "availability": "active",
                **TLS,
            },
        ),
        "list users": ("admin", "get", "/admin/auth/user/", {}),
    }


ADMIN_ACTIONS = [
    "see the index",
    "list nodes",
    "list events",
    "open a service",
    "scale up a service",
    "roll back a service",
    "drain a node",
    "add a node",
    "list users",
]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("what", ADMIN_ACTIONS)
def test_the_admin_lets_each_role_do_exactly_its_actions(client, role, what):
    service = setup_fleet()
    needed, method, url, data = admin_requests(service)[what]
    client.force_login(someone(role))
    before = state()
    response = getattr(client, method)(url, data)
    allowed = RANK[role] >= RANK[needed]
    if RANK[role] == 0:
        # No role, no admin: sent to the admin's login page.
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        assert state() == before
    elif method == "get":
        assert response.status_code == (200 if allowed else 403)
    elif allowed:
        assert response.status_code == 302
        assert state() != before
    else:
        # Refused outright, or an action not offered to this role ("No action selected."
        # and back to the list): nothing happens.
        assert response.status_code in (200, 302, 403)
        assert state() == before


@pytest.mark.django_db
def test_an_admin_sets_roles_in_the_admin_and_it_is_audited(client, fleet_admin, viewer):
    client.force_login(fleet_admin)
    response = client.post(
        "/admin/auth/user/", {"action": "set_role_operator", "_selected_action": [viewer.pk]}
    )
    assert response.status_code == 302
    assert roles.role_of(User.objects.get(pk=viewer.pk)) == "operator"
    event = Event.objects.get(kind="user.role_changed")
    assert (event.actor, event.old, event.new) == ("boss", "viewer", "operator")
    assert event.reason == "user viewer"


@pytest.mark.django_db
def test_an_operator_cannot_give_itself_a_role(client, operator):
    client.force_login(operator)
    response = client.post(
        "/admin/auth/user/", {"action": "set_role_admin", "_selected_action": [operator.pk]}
    )
    assert response.status_code == 403
    assert roles.role_of(User.objects.get(pk=operator.pk)) == "operator"


@pytest.mark.django_db
def test_the_role_command_shows_and_sets_a_role(viewer):
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("role", "viewer", "admin", stdout=out)
    assert out.getvalue().strip() == "viewer: admin"
    assert User.objects.get(pk=viewer.pk).has_perm("fleet.delete_node")
    call_command("role", "viewer", "none", stdout=out)
    assert not User.objects.get(pk=viewer.pk).has_perm("fleet.view_node")
    with pytest.raises(CommandError, match="No user named"):
        call_command("role", "ghost", "viewer")
    assert Event.objects.filter(kind="user.role_changed").count() == 2


# The live socket: connecting reads the fleet; following logs reads replicas.
ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")  # what daphne hands on from the request


async def answer(socket):
    """The reply to a message sent, skipping live changes that may arrive in between."""
    while (reply := await socket.receive_json_from(timeout=5))["type"] not in ("error", "log"):
        pass
    return reply


def socket_as(user):
    """A live socket that will authenticate as the user, by token (not yet connected)."""
    key = token_for(user)
    headers = [HOST, ORIGIN, (b"authorization", f"Token {key}".encode())]
    return WebsocketCommunicator(application, "/ws/fleet/", headers=headers)


def converse(user, message=None):
    """Connect as the user (by token), maybe send one message; return what happened."""
    socket = socket_as(user)

    async def scenario():
        connected, code = await socket.connect(timeout=5)
        if not connected:
            await socket.disconnect()  # the refused application ends here, not at loop close
            return code, None, None
        first = await socket.receive_json_from(timeout=5)
        reply = None
        if message is not None:
            await socket.send_json_to(message)
            reply = await answer(socket)
        await socket.disconnect()
        return None, first, reply

    return async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ROLES)
def test_the_socket_serves_each_role_exactly_its_messages(role, redis_server):
    setup_fleet()
    replica = Replica.objects.get()
    user = someone(role)
    refused, first, reply = converse(user, {"type": "logs.follow", "replica": replica.pk})
    if role is None:
        assert refused == 4403 and first is None
        return
    assert first["type"] == "snapshot"
    assert [s["name"] for s in first["data"]["services"]] == ["web"]
    # Allowed: the request goes through to the engine (which is not there).
    assert (reply["type"], reply["id"]) == ("error", replica.pk)
    assert reply["data"]["detail"].startswith("cannot read logs: cannot connect")


NOT_ALLOWED = {"detail": "not allowed: resync"}


@pytest.mark.django_db(transaction=True)
def test_a_role_taken_away_applies_to_an_open_socket(viewer, redis_server):
    socket = socket_as(viewer)

    async def scenario():
        await socket.connect(timeout=5)
        await socket.receive_json_from(timeout=5)
        from channels.db import database_sync_to_async

        await database_sync_to_async(roles.assign)(viewer, None)
        await socket.send_json_to({"type": "resync"})
        replies = []
        while (output := await socket.receive_output(timeout=5))["type"] != "websocket.close":
            replies.append(json.loads(output["text"]))
        await socket.disconnect()
        return replies, output["code"]

    # Closed, as its role's loss is pushed to it; a resync that came first is refused. Nothing
    # else reaches it, not even the news of the change.
    replies, code = async_to_sync(scenario)()
    assert code == 4403
    assert replies in ([], [{"type": "error", "id": None, "seq": None, "data": NOT_ALLOWED}])


@pytest.mark.django_db(transaction=True)
def test_a_socket_that_only_listens_is_closed_once_its_role_is_gone(viewer, redis_server):
    from channels.db import database_sync_to_async

    socket = socket_as(viewer)

    async def scenario():
        await socket.connect(timeout=5)
        await socket.receive_json_from(timeout=5)
        # Taking the role away is itself an event, pushed to every socket: this one must
        # not get it, nor anything after.
        await database_sync_to_async(roles.assign)(viewer, None)
        while (output := await socket.receive_output(timeout=5))["type"] != "websocket.close":
            assert "user.role_changed" not in output.get("text", "")
        await socket.disconnect()  # as the browser would: the consumer ends, nothing lingers
        return output

    assert async_to_sync(scenario)()["code"] == 4403


@pytest.mark.django_db
def test_the_user_form_cannot_change_a_role_behind_the_actions_back(client, fleet_admin, viewer):
    from django.contrib.auth.models import Group

    client.force_login(fleet_admin)
    url = f"/admin/auth/user/{viewer.pk}/change/"
    html = client.get(url).content.decode()
    assert 'name="groups"' not in html and 'name="is_staff"' not in html
    admins = Group.objects.get(name=roles.GROUP_NAMES["admin"])
    response = client.post(
        url,
        {
            "username": "viewer",
            "is_active": "on",
            "groups": [admins.pk],
            "is_superuser": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302
    assert roles.role_of(User.objects.get(pk=viewer.pk)) == "viewer"
    # The role groups themselves are Fleet's, shown and not edited.
    assert client.get(f"/admin/auth/group/{admins.pk}/change/").status_code == 200
    assert client.post("/admin/auth/group/add/", {"name": "x"}).status_code == 403
    assert client.post(f"/admin/auth/group/{admins.pk}/delete/", {"post": "yes"}).status_code == 403


@pytest.mark.django_db
def test_a_superuser_keeps_being_an_admin(admin_user):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="superuser"):
        call_command("role", "root", "viewer")
    assert roles.role_of(User.objects.get(pk=admin_user.pk)) == "admin"
    assert not Event.objects.exists()
