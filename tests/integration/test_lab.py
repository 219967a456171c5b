"""`python -m lab`: real engines, a registry, the demo images, nodes registered."""

import json
import os
import secrets
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress
from pathlib import Path

import docker
import pytest
import requests

from fleet.models import Node
from lab.engines import mix_from_env
from tests.system import lab_engine

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]


def lab_command(*args, env=None, timeout=300):
    """`python -m lab ARGS`, as the README shows it."""
    result = subprocess.run(
        [sys.executable, "-m", "lab", *args],
        cwd=ROOT,
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def entry_of(lab, name):
    return next(n for n in lab.status()["nodes"] if n["name"] == name)


def test_status_reports_registry_images_and_live_engines_as_json(lab):
    status = json.loads(lab_command("status", "--json"))
    assert set(status) == {"registry", "private_registry", "images", "nodes"}
    base = lab.net.network_address  # 10.250.8.0 unless FLEET_LAB_SUBNET says otherwise
    assert status["registry"] == f"{base + 1}:5000"
    assert status["images"] == {
        "demo_v1": f"{base + 1}:5000/fleet/demo:1",
        "demo_v2": f"{base + 1}:5000/fleet/demo:2",
        "private_v1": f"{base + 1}:5443/fleet/private:1",
    }
    private = status["private_registry"]
    assert private["address"] == f"{base + 1}:5443" and private["username"] == "fleet"
    assert private["password"] == lab.private.password_file.read_text()
    assert stat.S_IMODE(lab.private.password_file.stat().st_mode) == 0o600
    assert private["ca"] == status["nodes"][0]["tls"]["ca"]
    assert [n["name"] for n in status["nodes"]] == ["lab-1", "lab-2", "lab-3"]
    mix = mix_from_env(3)  # lab-3 on the newer engine unless FLEET_LAB_ENGINES says
    for i, node in enumerate(status["nodes"], 1):
        assert set(node) == {"name", "endpoint", "tls", "ssh", "engine", "pid"}
        assert node["ssh"] is None  # every node on TLS unless told (FLEET_LAB_SSH)
        assert node["engine"] == mix.get(node["name"], "host")
        assert node["endpoint"] == f"tcp://{base + 10 + i}:2376"
        assert set(node["tls"]) == {"ca", "cert", "key"}
        assert all(Path(path).is_file() for path in node["tls"].values())
        program = Path(f"/proc/{node['pid']}/cmdline").read_bytes().split(b"\0")[0]
        assert Path(program.decode()).name == "dockerd"


def test_up_again_changes_nothing_and_registers_the_nodes(lab, process_env, transactional_db):
    before, private_pid = lab.status(), lab.private.pid()
    started = time.monotonic()
    lab_command("up", "--nodes", "3", env=process_env)
    assert time.monotonic() - started < 30
    assert lab.status()["nodes"] == before["nodes"]
    assert lab.status()["private_registry"] == before["private_registry"]
    assert private_pid is not None and lab.private.pid() == private_pid
    names = sorted(Node.objects.values_list("name", flat=True))
    assert names == ["lab-1", "lab-2", "lab-3"]
    node = Node.objects.get(name="lab-2")
    assert node.endpoint == f"tcp://{lab.net.network_address + 12}:2376"
    assert node.tls_ca.startswith("-----BEGIN CERTIFICATE-----") and not node.insecure
    assert "PRIVATE KEY" in node.tls_key  # open in memory, sealed in the database


def test_up_restarts_an_engine_that_died(lab):
    lab.kill_node("lab-3")
    assert entry_of(lab, "lab-3")["pid"] is None
    lab.up(3)
    pid = entry_of(lab, "lab-3")["pid"]
    assert pid and Path(f"/proc/{pid}").exists()


@pytest.mark.parametrize(("node", "tag", "port"), [("lab-2", "1", 18081), ("lab-3", "2", 18082)])
def test_any_node_pulls_the_demo_image_and_serves_its_version(lab, node, tag, port):
    entry = entry_of(lab, node)
    client = lab_engine(entry)
    image = lab.status()["images"][f"demo_v{tag}"]
    container = client.containers.run(image, detach=True, ports={"80/tcp": port})
    try:
        address = entry["endpoint"].split("//")[1].split(":")[0]
        deadline = time.monotonic() + 20
        while True:
            try:
                url = f"http://{address}:{port}/health"
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                    assert response.read().decode().strip() == tag
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        # The image carries wget, so a HEALTHCHECK command can run inside it.
        code, _ = container.exec_run(["wget", "-q", "-O", "-", "http://127.0.0.1/health"])
        assert code == 0
    finally:
        container.remove(force=True)
        client.close()


def api_version(text):
    return tuple(int(part) for part in text.split("."))


def test_a_node_can_run_an_engine_that_refuses_api_versions_below_1_44(lab):
    """The "28" kind, Docker 28.5 with DOCKER_MIN_API_VERSION=1.44, answers as Docker 29 does
    by default; the other nodes stay on the host's engine."""
    before = {n["name"]: n["pid"] for n in lab.status()["nodes"]}
    mix = {n["name"]: n["engine"] for n in lab.status()["nodes"]}
    try:
        lab.up(4, {**mix, "lab-4": "28"})
        entry = entry_of(lab, "lab-4")
        assert entry["engine"] == "28"
        assert {n["name"]: n["pid"] for n in lab.status()["nodes"][:3]} == before
        client = lab_engine(entry)  # over mutual TLS on the node's address, as Fleet reaches it
        url = client.api.base_url
        assert api_version(client.api.get(f"{url}/_ping").headers["Api-Version"]) >= (1, 44)
        refused = client.api.get(f"{url}/v1.41/version")
        assert refused.status_code == 400
        assert "client version 1.41 is too old" in refused.json()["message"]
        assert "Minimum supported API version is 1.44" in refused.json()["message"]
        assert client.version()["MinAPIVersion"] == "1.44"
        image = lab.status()["images"]["demo_v1"]
        output = client.containers.run(image, ["cat", "/www/health"], remove=True)
        assert output.decode().strip() == "1"
        client.close()
    finally:
        lab.up(3)
    assert {n["name"]: n["engine"] for n in lab.status()["nodes"]} == mix


def mac_in(netns, device):
    output = subprocess.run(
        ["ip", *(["-n", netns] if netns else []), "-j", "link", "show", device],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output)[0]["address"]


def test_a_node_made_again_is_reached_at_once(lab):
    """Its eth0 and the bridge keep their MACs, so the host's neighbour cache never holds a
    MAC that went away (with new ones, the host reached the node again only once its cached
    entry failed, up to half a minute on, unless the bridge's MAC happened to change)."""
    mix = {n["name"]: n["engine"] for n in lab.status()["nodes"]}
    macs = set()
    try:
        for _ in range(3):
            address = lab.up(4, {**mix, "lab-4": "host"})["nodes"][3]["address"]
            with socket.create_connection((address, 2376), timeout=3):
                pass
            macs.add((mac_in(f"fleet-{lab.name}-4", "eth0"), mac_in(None, lab.bridge)))
            lab.up(3, mix)
    finally:
        lab.up(3, mix)
    assert len(macs) == 1


def private_get(lab, path, auth=None, verify=None):
    """GET a path of the private registry, verified with the lab's CA unless told otherwise."""
    private = lab.status()["private_registry"]
    with requests.Session() as session:
        session.trust_env = False  # no proxy, no REQUESTS_CA_BUNDLE in the CA's place
        url = f"https://{private['address']}{path}"
        return session.get(url, auth=auth, verify=verify or private["ca"], timeout=10)


def login_of(lab):
    private = lab.status()["private_registry"]
    return private["username"], private["password"]


def test_the_private_registry_speaks_https_of_the_lab_ca_and_needs_a_login(lab):
    refused = private_get(lab, "/v2/")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Basic ")
    assert private_get(lab, "/v2/", auth=("fleet", "not-the-password")).status_code == 401
    assert private_get(lab, "/v2/", auth=login_of(lab)).status_code == 200
    tags = private_get(lab, "/v2/fleet/private/tags/list", auth=login_of(lab)).json()["tags"]
    assert tags == ["1"]
    with pytest.raises(requests.exceptions.SSLError):
        private_get(lab, "/v2/", verify=True)  # the usual CAs do not know it


def forget(client, image):
    with suppress(docker.errors.ImageNotFound):
        client.images.remove(image, force=True)


@pytest.mark.parametrize("node", ["lab-2", "lab-3"])  # lab-3: the newer engine by default
def test_a_node_pulls_from_the_private_registry_only_after_a_login(lab, node):
    private, image = lab.status()["private_registry"], lab.status()["images"]["private_v1"]
    username, password = login_of(lab)
    client = lab_engine(entry_of(lab, node))
    try:
        forget(client, image)
        with pytest.raises(docker.errors.APIError, match="no basic auth credentials"):
            client.images.pull(image)
        wrong = {"username": username, "password": "not-the-password"}
        with pytest.raises(docker.errors.APIError, match="unauthorized"):
            client.images.pull(image, auth_config=wrong)
        with pytest.raises(docker.errors.APIError, match="401 Unauthorized"):
            client.login(username, "not-the-password", registry=private["address"])
        answer = client.login(username, password, registry=private["address"])
        assert answer["Status"] == "Login Succeeded"
        assert image in client.images.pull(image).tags  # with the login's credentials
        output = client.containers.run(image, ["cat", "/www/health"], remove=True)
        assert output.decode().strip() == "1"
        forget(client, image)
        fresh = lab_engine(entry_of(lab, node))  # no login: the credentials come with the pull
        given = {"username": username, "password": password}
        assert image in fresh.images.pull(image, auth_config=given).tags
        fresh.close()
    finally:
        forget(client, image)
        client.close()


def test_a_new_private_password_is_taken_and_the_old_one_refused(lab):
    address = lab.status()["private_registry"]["address"]
    username, old = login_of(lab)
    new = f"rotated-{secrets.token_urlsafe(12)}"
    lab.set_private_password(new)
    assert login_of(lab) == (username, new)
    assert lab.private.password_file.read_text() == new
    assert private_get(lab, "/v2/", auth=(username, old)).status_code == 401
    assert private_get(lab, "/v2/", auth=(username, new)).status_code == 200
    client = lab_engine(entry_of(lab, "lab-2"))
    try:
        with pytest.raises(docker.errors.APIError, match="401 Unauthorized"):
            client.login(username, old, registry=address, reauth=True)
        assert client.login(username, new, registry=address, reauth=True)["Status"] == (
            "Login Succeeded"
        )
    finally:
        client.close()
    tags = private_get(lab, "/v2/fleet/private/tags/list", auth=(username, new)).json()["tags"]
    assert tags == ["1"]  # the registry keeps its images
