"""Fleet's own processes and services failing: the watch, Redis and PostgreSQL restarted.

Every test ends with the service converged (fleet.converged): the desired count
serving, one container per slot, and no Fleet container that no replica claims.
"""

import json
import os
import shutil
import signal
import subprocess
import time
from urllib.parse import urlsplit

import pytest
from django.db import connection
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from fleet.models import Node, Replica
from tests.conftest import token_for
from tests.system import _start, _stop, clean_fleet, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def rows_match_engines(fleet, name):
    """Every replica row says what its node's engine says of its container."""
    states = {c.id: c.status for cs in fleet.containers(name).values() for c in cs}
    rows = Replica.objects.filter(service__name=name).exclude(container_id="")
    mismatched = [
        (r.slot, r.state, states.get(r.container_id))
        for r in rows
        if (r.state == "running") != (states.get(r.container_id) == "running")
    ]
    return not mismatched


@pytest.fixture
def watched(lab, lab_nodes, celery_worker, watch_process, api):
    """Worker and watch, but no beat: nothing but the watch notices what engines do."""
    with clean_fleet(lab, api) as fleet:
        yield fleet


def test_changes_made_while_the_watch_is_down_are_caught_up_when_it_restarts(
    watched, watch_process, process_env
):
    fleet = watched
    fleet.create("web", replicas=4, update={"monitor": 0})
    fleet.converged("web", 4)
    os.killpg(watch_process.pid, signal.SIGKILL)
    watch_process.wait()
    # While it is down: a scale to 6, then two containers killed behind Fleet's back.
    response = fleet.api.post("/api/services/web/scale", {"replicas": 6}, format="json")
    assert response.status_code == 202
    fleet.converged("web", 6)
    killed = [r.container_id for r in Replica.objects.filter(service__name="web")[:2]]
    for container_id in killed:
        node = Replica.objects.get(container_id=container_id).node.name
        fleet.engines[node].containers.get(container_id).kill()
    time.sleep(2)
    # No beat, no watch: nothing has noticed.
    assert Replica.objects.filter(container_id__in=killed, state="running").count() == 2
    again = _start("watch", ["manage.py", "watch", "--rescan", "0.5"], process_env)
    try:
        # Its resync on connect sees the dead containers, and their healing follows.
        fleet.converged("web", 6)
        assert not Replica.objects.filter(container_id__in=killed).exists()
        assert rows_match_engines(fleet, "web")
    finally:
        _stop([again])


class Dashboard:
    """A program on /ws/fleet/ that behaves as the page's script does: a snapshot on every
    connect, reconnect a second after the socket closes, ask for a snapshot after a gap."""

    def __init__(self, url, token):
        self.url = url.replace("http://", "ws://") + "/ws/fleet/"
        self.headers = {"Authorization": f"Token {token}", "Origin": url}
        self.socket, self.seq, self.services, self.connects = None, None, {}, 0

    def connect(self):
        try:
            opened = connect(self.url, additional_headers=self.headers, open_timeout=5)
            self.socket = opened.__enter__()  # as `with` would; close() ends it
        except (OSError, InvalidHandshake, TimeoutError):
            self.socket = None
            return
        self.connects += 1

    def take(self, message):
        if message["type"] == "snapshot":
            self.services = {s["name"]: s for s in message["data"]["services"]}
        elif message["type"] == "service":
            self.services[message["id"]] = message["data"]
        if message.get("seq") is None:
            return
        if message["type"] != "snapshot" and self.seq is not None and message["seq"] > self.seq + 1:
            self.socket.send(json.dumps({"type": "resync"}))
        self.seq = max(self.seq or 0, message["seq"])

    def follow_until(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate(self.services):
            if time.monotonic() > deadline:
                raise AssertionError(f"the dashboard shows {self.services}")
            if self.socket is None:
                time.sleep(1)
                self.connect()
                continue
            try:
                self.take(json.loads(self.socket.recv(timeout=0.5)))
            except TimeoutError:
                continue
            except ConnectionClosed:
                self.socket = None

    def close(self):
        if self.socket is not None:
            self.socket.close()


def shows(name, count):
    return lambda services: (
        (s := services.get(name)) is not None
        and s["replicas"] == count
        and s["running_replicas"] == count
    )


def queued_converges(redis_server):
    """The converge tasks waiting in the Celery queue, by task id."""
    found = set()
    for raw in redis_server.client.lrange("celery", 0, -1):
        headers = json.loads(raw)["headers"]
        if headers["task"] == "fleet.tasks.converge_service":
            found.add(headers["id"])
    return found


def test_after_a_redis_restart_sockets_resync_and_no_accepted_work_is_lost(
    fleet,
    server,
    redis_server,
    celery_worker,
    process_env,
    admin_user,
):
    dashboard = Dashboard(server, token_for(admin_user))
    fleet.create("web", replicas=2, update={"monitor": 0})
    fleet.converged("web", 2)
    dashboard.connect()
    dashboard.follow_until(shows("web", 2), 30)
    # A scale accepted while Redis is down: its converge cannot be queued, yet it happens.
    redis_server.stop()
    try:
        response = fleet.api.post("/api/services/web/scale", {"replicas": 3}, format="json")
        assert response.status_code == 202
    finally:
        redis_server.start()
    dashboard.follow_until(shows("web", 3), 60)
    fleet.converged("web", 3)
    # A scale queued just before a restart, with no worker to take it: still queued after.
    _stop([celery_worker])
    response = fleet.api.post("/api/services/web/scale", {"replicas": 4}, format="json")
    assert response.status_code == 202
    queued = queued_converges(redis_server)
    assert queued
    redis_server.stop()
    redis_server.start()
    assert queued <= queued_converges(redis_server)
    args = ["-m", "celery", "-A", "fleet", "worker", "--concurrency", "8", "-n", "again@%h"]
    args += ["-Q", "celery,alerts"]  # as the tests' worker: both queues
    worker = _start("worker", [*args, "--loglevel", "INFO"], process_env)
    try:
        dashboard.follow_until(shows("web", 4), 60)
        fleet.converged("web", 4)
        assert dashboard.connects >= 2, "the socket never noticed Redis going away"
    finally:
        dashboard.close()
        _stop([worker])


def postgres_cluster():
    """(version, name) of the local PostgreSQL cluster serving the test database."""
    port = str(connection.settings_dict["PORT"] or 5432)
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    for line in listing.stdout.splitlines():
        version, name, cluster_port = line.split()[:3]
        if cluster_port == port:
            return version, name
    pytest.fail(f"no local PostgreSQL cluster on port {port} to restart")


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="runs on PostgreSQL only (DATABASE_URL=postgres://...): SQLite has no server",
)
def test_after_a_postgresql_restart_every_process_carries_on(
    fleet,
    server,
    celery_beat,
    watch_process,
    beat_env,
    tmp_path,
):
    assert shutil.which("pg_ctlcluster"), "restarting PostgreSQL needs pg_ctlcluster"
    assert urlsplit(server).hostname == "127.0.0.1"
    fleet.create("web", replicas=3, update={"monitor": 0})
    fleet.converged("web", 3)
    version, name = postgres_cluster()
    subprocess.run(["pg_ctlcluster", version, name, "restart"], check=True)
    connection.close()  # this process's own connection died with the server
    restarted = Node.objects.order_by("last_seen_at").first().last_seen_at
    # Worker and beat: nodes are checked again.
    wait_for(
        lambda: Node.objects.order_by("last_seen_at").first().last_seen_at > restarted,
        30,
        message="the nodes to be checked again",
    )
    # Watch (beat stopped, so that no reconcile can do it instead): a container killed
    # behind Fleet's back is seen, and healed by the worker.
    _stop([celery_beat])
    victim = Replica.objects.filter(service__name="web").first()
    fleet.engines[victim.node.name].containers.get(victim.container_id).kill()
    wait_for(
        lambda: not Replica.objects.filter(container_id=victim.container_id, state="running"),
        10,
        message="the watch to see the container die",
    )
    # Beat again: a converge cut short by the restart holds its lease until it lapses,
    # and the reconcile hands the service on then.
    args = ["-m", "celery", "-A", "fleet", "beat", "-s", str(tmp_path / "again")]
    beat = _start("beat", args, beat_env)
    # Web: the API, served by daphne, scales.
    import urllib.request

    from django.contrib.auth.models import User

    token = token_for(User.objects.get(username="root"))
    request = urllib.request.Request(
        f"{server}/api/services/web/scale",
        data=json.dumps({"replicas": 4}).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - localhost
        assert response.status == 202
    try:
        fleet.converged("web", 4)
    finally:
        _stop([beat])
