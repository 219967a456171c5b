"""The ingress's HAProxy configuration and the parsing of what its runtime API says."""

from types import SimpleNamespace

import pytest

from fleet.ingress import haproxy, routes
from fleet.ingress.config import Backend, Server, render

STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state (and so on)
3 svc-web 1 r7-abc 10.0.0.11 2 0 1 1 5 6 3 4 6 0 0 0 - 32768 -
3 svc-web 2 r8-def 10.0.0.12 2 8 1 1 5 6 3 4 6 0 0 0 - 32769 -
3 svc-web 3 r9-123 10.0.0.13 0 1 1 1 5 6 3 4 6 0 0 0 - 32770 -
"""

STAT = """# pxname,svname,qcur,qmax,scur,smax,stot,req_rate,hrsp_5xx,status
svc-web,r7-abc,0,0,3,5,100,12,1,UP
svc-web,BACKEND,0,0,3,5,100,12,1,UP
"""


def test_the_configuration_holds_each_backend_with_its_servers_and_the_route_map():
    backends = [
        Backend("svc-web", "web.example.com/", [Server("r7-abc", "10.0.0.11", 32768)]),
        Backend("svc-api", "web.example.com/api/", []),
    ]
    text, routes_text = render(backends, "127.0.0.1:18399", "/v/admin.sock", "/v/routes.map")
    assert "bind 127.0.0.1:18399" in text
    assert "stats socket /v/admin.sock mode 600 level admin" in text
    assert "map_beg(/v/routes.map)" in text
    assert "backend svc-web\n" in text and "backend svc-api\n" in text
    assert "server r7-abc 10.0.0.11:32768 check inter 500 fall 2 rise 1" in text
    assert routes_text == "web.example.com/ svc-web\nweb.example.com/api/ svc-api\n"


def test_servers_state_is_read_with_drain_and_maintenance():
    servers = haproxy.parse_servers_state(STATE)
    assert [servers[n].state for n in ("r7-abc", "r8-def", "r9-123")] == ["up", "drain", "maint"]
    assert (servers["r7-abc"].addr, servers["r7-abc"].port) == ("10.0.0.11", 32768)


def test_stats_rows_are_read_by_column_name():
    rows = haproxy.parse_stats(STAT)
    assert rows[0]["svname"] == "r7-abc" and rows[0]["scur"] == "3" and rows[0]["req_rate"] == "12"


def test_a_server_name_carries_its_replica_and_container():
    name = routes.server_name(42, "0123456789abcdef" * 4)
    assert name == "r42-0123456789ab"
    assert routes.replica_of(name) == 42
    assert routes.replica_of("BACKEND") is None


@pytest.mark.parametrize(
    "container_id",
    ["abc;disable server svc-web/r1-x" + "0" * 40, "0" * 63 + "\n", "0" * 63, "Z" * 64, ""],
)
def test_a_server_name_is_made_only_of_a_real_container_id(container_id):
    # A `;` or newline in a name sent to HAProxy's runtime API would start another command.
    with pytest.raises(ValueError):
        routes.server_name(1, container_id)


def test_a_node_is_reached_at_its_engine_s_host():
    assert routes.node_address(SimpleNamespace(endpoint="tcp://10.250.7.11:2376")) == "10.250.7.11"
    assert routes.node_address(SimpleNamespace(endpoint="unix:///var/run/docker.sock")) == (
        "127.0.0.1"
    )


def test_the_route_key_is_host_then_path():
    assert routes.route_key({"host": "web.example.com", "path": "/api/"}) == "web.example.com/api/"
    assert routes.backend_name("web") == "svc-web" and routes.service_of("svc-web") == "web"
