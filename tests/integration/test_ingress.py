"""The ingress under real traffic: HAProxy in front of a service on the lab's engines.

One service and one load generator (threads of keep-alive http.client connections to the
proxy, with the service's Host header) go through a rolling update, a scale down, a
replica restart and an engine SIGKILL; every failed request is counted, with when it failed.
The proxy listens on a port of its own, not the default 8080.
"""

import contextlib
import http.client
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

from fleet import live
from fleet.converge import inflight
from fleet.ingress import drain, haproxy, process, routes
from fleet.models import Replica
from tests import processes
from tests.integration.test_services_deploy import HEALTH, PORT
from tests.system import WORKER, clean_fleet, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

BIND_PORT = 18380
HOST = "web.ingress.test"
INGRESS = {"host": HOST, "port": 80}


@pytest.fixture(scope="module")
def ingress_dir():
    # A short path: unix socket paths are limited to 107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="fleet-ig-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def process_env(process_env, ingress_dir):
    """Fleet's processes find the test's HAProxy."""
    return {
        **process_env,
        "FLEET_INGRESS_DIR": str(ingress_dir),
        "FLEET_INGRESS_BIND": f"127.0.0.1:{BIND_PORT}",
    }


@pytest.fixture
def ingress(settings, ingress_dir):
    """HAProxy, started as `make run` starts it, and stopped after the test."""
    settings.FLEET_INGRESS_DIR = ingress_dir
    settings.FLEET_INGRESS_BIND = f"127.0.0.1:{BIND_PORT}"
    assert process.start()
    yield
    process.stop()


class Load:
    """Steady GET requests through the proxy from a few threads; every outcome is kept."""

    def __init__(self, threads=4):
        self.results = []  # (monotonic time, "ok" | what went wrong, body)
        self.reopened = []  # when a closed idle connection made a request go again
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(10)

    def _run(self):
        conn, reused = None, False
        while not self.stopping.is_set():
            conn = conn or http.client.HTTPConnection("127.0.0.1", BIND_PORT, timeout=5)
            try:
                outcome, body = self._get(conn)
                reused = True
            except (ConnectionResetError, BrokenPipeError) as exc:
                conn.close()
                if reused:
                    # An idle keep-alive connection the proxy closed (a reload does): HTTP
                    # clients send the request again on a new one (RFC 9112, 9.3.1), as
                    # browsers do; http.client does not, so this client does, and counts it.
                    with self.lock:
                        self.reopened.append(time.monotonic())
                    conn = http.client.HTTPConnection("127.0.0.1", BIND_PORT, timeout=5)
                    outcome, body = self._attempt(conn)
                else:
                    outcome, body = f"{type(exc).__name__}: {exc}", ""
            except (OSError, http.client.HTTPException) as exc:
                outcome, body = f"{type(exc).__name__}: {exc}", ""
            if outcome != "ok":
                conn.close()
                conn, reused = None, False
            with self.lock:
                self.results.append((time.monotonic(), outcome, body))
            time.sleep(0.005)

    def _attempt(self, conn):
        try:
            return self._get(conn)
        except (OSError, http.client.HTTPException) as exc:
            return f"{type(exc).__name__}: {exc}", ""

    @staticmethod
    def _get(conn):
        conn.request("GET", "/", headers={"Host": HOST})
        response = conn.getresponse()
        body = response.read().decode().strip()
        return ("ok" if response.status == 200 else f"HTTP {response.status}"), body

    def reopened_since(self, start):
        with self.lock:
            return [t for t in self.reopened if t >= start]

    def since(self, start):
        with self.lock:
            return [r for r in self.results if r[0] >= start]

    def failures(self, start):
        return [r for r in self.since(start) if r[1] != "ok"]

    def bodies(self, start):
        return {r[2] for r in self.since(start) if r[1] == "ok"}


def answer(host):
    """What the proxy answers for `host` (one request on a fresh connection), or None."""
    conn = http.client.HTTPConnection("127.0.0.1", BIND_PORT, timeout=2)
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        return response.read().decode().strip() if response.status == 200 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def crash(lab, name):
    """SIGKILL a lab node's engine and every process of its containers."""
    lab.kill_node(name)
    folder = Path(f"/sys/fs/cgroup/pids/fleet-{lab.name}-{name.rsplit('-', 1)[1]}")
    for procs in folder.glob("*/cgroup.procs"):
        for pid in procs.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def proxy_servers():
    """{server name: state} of the service's backend as HAProxy reports it."""
    try:
        return {n: s.state for n, s in haproxy.servers_state(routes.backend_name("web")).items()}
    except (haproxy.Unavailable, haproxy.NoBackend):
        return {}


def retried():
    """Requests of the backend that HAProxy had to retry or send to another replica: none,
    when every replica left the proxy before it stopped."""
    (row,) = haproxy.parse_stats(haproxy.command(f"show stat {routes.backend_name('web')} 2 -1"))
    return int(row["wretr"] or 0) + int(row["wredis"] or 0)


def serving_servers():
    """The servers the proxy should have: one per serving replica."""
    rows = Replica.objects.filter(service__name="web").exclude(container_id="")
    return {routes.server_name(r.pk, r.container_id) for r in rows if r.serving}


def in_line(count):
    """The proxy holds exactly the serving replicas, `count` of them, all up."""
    servers, wanted = proxy_servers(), serving_servers()
    return len(wanted) == count and servers == dict.fromkeys(wanted, "up")


def test_traffic_through_the_ingress_survives_updates_scaling_restarts_and_a_killed_engine(
    fleet, watch_process, ingress, client, admin_user, anon_api
):
    created = fleet.create(
        "web",
        replicas=6,
        ports=PORT,
        healthcheck=HEALTH,
        ingress=INGRESS,
        update={"parallelism": 2, "monitor": 1},
    )
    plain = fleet.create("plain", replicas=0)
    assert fleet.api.get(f"/api/services/{plain['name']}/ingress/").status_code == 404
    fleet.wait_deployment(created["current_deployment"]["id"], "succeeded")
    wait_for(lambda: in_line(6), 10, message="six servers up in the proxy")
    timings = {}
    with Load() as load:
        # Traffic flows, to version 1.
        begin = time.monotonic()
        wait_for(lambda: len(load.since(begin)) > 50, 10, message="requests to pass")
        assert load.bodies(begin) == {"1"} and load.failures(begin) == []

        # A rolling update of all six, under load: not one request lost.
        begin = time.monotonic()
        response = fleet.api.post(
            "/api/services/web/deploy/", {"image": fleet.images["demo_v2"]}, format="json"
        )
        assert response.status_code == 202, response.json()
        fleet.wait_deployment(response.json()["id"], "succeeded", timeout=60)
        wait_for(lambda: in_line(6), 5, message="the new six in the proxy")
        timings["update"] = time.monotonic() - begin
        settle = time.monotonic()
        wait_for(lambda: len(load.since(settle)) > 20, 5, message="requests after the update")
        assert load.failures(begin) == []
        assert load.bodies(settle) == {"2"}

        # Scale down to three: the three that go are drained first.
        begin = time.monotonic()
        assert fleet.api.post("/api/services/web/scale/", {"replicas": 3}).status_code == 202
        wait_for(lambda: in_line(3) and fleet.count("web") == 3, 30, message="three left")
        timings["scale down"] = time.monotonic() - begin
        assert load.failures(begin) == []

        # Until now, not one connection closed under a client either, and HAProxy retried
        # or redispatched no request: the drains, not its retries, kept every one whole.
        assert load.reopened == []
        assert retried() == 0

        # A second service's route is a new backend: HAProxy reloads, hitless for every
        # request; idle keep-alive connections of the old worker close, and are reopened.
        begin = time.monotonic()
        fleet.create(
            "api", replicas=1, ports=PORT, ingress={"host": "api.ingress.test", "port": 80}
        )
        wait_for(lambda: answer("api.ingress.test") == "1", 30, message="the api service's route")
        assert load.failures(begin) == []
        reloaded = time.monotonic()
        timings["reopened at reload"] = len(load.reopened)

        # The API and the page show the route and the three servers with their traffic.
        # (A reload's new worker checks each server within its first 500 ms: until then
        # a server's check says "not checked yet".)
        shown = wait_for(
            lambda: (
                (found := fleet.api.get("/api/services/web/ingress/").json())
                and all(s["check"] != "INI" for s in found["servers"])
                and found
            ),
            5,
            0.1,
            message="the reloaded proxy to have checked web's servers",
        )
        assert (shown["address"], shown["proxy"]) == (f"http://{HOST}/", "running")
        assert sorted(s["slot"] for s in shown["servers"]) == [1, 2, 3]
        assert {s["state"] for s in shown["servers"]} == {"up"}
        assert sum(s["request_rate"] for s in shown["servers"]) > 0
        assert all(s["requests"] > 0 and s["errors"] == 0 for s in shown["servers"])
        assert {(s["check"], s["check_words"]) for s in shown["servers"]} <= {
            ("L4OK", "port answers"),
            ("L7OK", "HTTP answers"),
        }
        client.force_login(admin_user)
        page = client.get("/services/web/").content.decode()
        assert f"http://{HOST}/" in page and 'data-live="service-ingress"' in page
        assert page.count('<td data-label="State">up</td>') == 3
        assert page.count('title="HAProxy check status L') == 3  # in words, the code beside
        # The same fragment rides along with every live message of the service.
        pushed = live.envelope("service", "web")["views"]["service-ingress"]
        assert pushed.count('<td data-label="State">up</td>') == 3 and f"http://{HOST}/" in pushed
        assert anon_api.get("/api/services/web/ingress/").status_code in (401, 403)

        # Restart a replica: its container is drained out of the proxy before it stops.
        begin = time.monotonic()
        old = serving_servers()
        restarted = fleet.api.post("/api/services/web/replicas/1/restart/")
        assert restarted.status_code == 202, restarted.json()
        # The new container is in the proxy within a second of its row saying it serves.
        new = wait_for(lambda: serving_servers() - old, 30, 0.02, "slot 1 to serve again")
        serving = time.monotonic()
        wait_for(
            lambda: all(proxy_servers().get(n) == "up" for n in new), 1, 0.02, "it in the proxy"
        )
        timings["in the proxy after serving"] = time.monotonic() - serving
        wait_for(lambda: in_line(3), 10, message="the proxy to hold the three serving replicas")
        timings["restart"] = time.monotonic() - begin
        assert load.failures(begin) == []

        # The same for the restart, by the new worker's counters.
        assert retried() == 0
        assert load.reopened_since(reloaded) == []

        # A node drained: its replica starts on another node first, then leaves the proxy,
        # finishes its requests and stops; not one request lost, none retried.
        drained = Replica.objects.filter(service__name="web").values_list("node__name", flat=True)
        drained = sorted(drained)[0]
        begin = time.monotonic()
        assert fleet.api.post(f"/api/nodes/{drained}/drain").status_code == 200
        wait_for(
            lambda: (
                not Replica.objects.filter(service__name="web", node__name=drained).exists()
                and not fleet.containers("web", drained)[drained]
                and fleet.count("web") == 3
                and in_line(3)
            ),
            30,
            message=f"web's replicas to move off {drained}",
        )
        timings["drain"] = time.monotonic() - begin
        assert load.failures(begin) == []
        assert retried() == 0
        assert fleet.api.post(f"/api/nodes/{drained}/activate").status_code == 200

        # A node's engine killed under load, its containers with it (a machine that dies;
        # a killed dockerd alone leaves its containers serving): HAProxy's own checks take
        # them out within 2 s, long before Fleet marks the node down, and whatever failed
        # did so within 2 s of the kill.
        victim = next(n for n in fleet.engines if Replica.objects.filter(node__name=n).exists())
        dead = {
            routes.server_name(r.pk, r.container_id)
            for r in Replica.objects.filter(service__name="web", node__name=victim)
        }
        begin = time.monotonic()
        try:
            crash(fleet.lab, victim)
            killed = time.monotonic()
            wait_for(
                lambda: all(proxy_servers().get(name) != "up" for name in dead),
                2,
                0.05,
                message=f"the proxy to take the replicas of {victim} out",
            )
            timings["out after kill"] = time.monotonic() - killed
            time.sleep(3)
            failed = load.failures(begin)
            late = [f for f in failed if f[0] - killed > 2]
            assert late == [], f"{len(late)} requests failed more than 2 s after the kill: {late}"
            assert len(load.since(killed + 2)) > 50  # and the rest still served
            timings["failed after kill"] = len(failed)
        finally:
            fleet.lab.start_node(victim)
    print(f"ingress timings (s): {timings}; requests: {len(load.results)}")
    assert len(load.results) > 500
    assert settings.FLEET_INGRESS_BIND.endswith(str(BIND_PORT))


# The demo image's httpd runs CGI: /cgi-bin/slow answers at once, then writes a line every
# 5 s for SLOW seconds (each line well within HAProxy's 30 s `timeout server`).
SLOW = 45
SLOW_HTTPD = [
    "sh",
    "-c",
    "mkdir -p /tmp/w/cgi-bin && cp -r /www/. /tmp/w/"
    " && { echo '#!/bin/sh'; echo 'echo Content-Type: text/plain'; echo echo;"
    f" echo 'for i in $(seq {SLOW // 5}); do sleep 5; echo tick; done; echo slow done'; }}"
    " > /tmp/w/cgi-bin/slow && chmod +x /tmp/w/cgi-bin/slow && exec httpd -f -p 80 -h /tmp/w",
]


def test_a_replica_drained_by_a_worker_that_dies_is_left_to_drain_by_every_other_process(
    lab, lab_nodes, celery_worker, celery_beat, api, ingress, process_env
):
    """A drain outlives the worker that began it: the worker is killed while a replica
    scaled away drains a slow request; the converge that takes over in another worker
    (and the reconcile beside it) must leave that container be until its drain could have
    ended, so the request is answered."""
    with clean_fleet(lab, api) as fleet:
        created = fleet.create(
            "web",
            replicas=2,
            ports=PORT,
            healthcheck=HEALTH,
            ingress=INGRESS,
            command=SLOW_HTTPD,
            update={"drain": SLOW + 10, "monitor": 0},
        )
        fleet.wait_deployment(created["current_deployment"]["id"], "succeeded")
        wait_for(lambda: in_line(2), 10, message="both replicas up in the proxy")
        leaving = Replica.objects.get(service__name="web", slot=2)
        server = routes.server_name(leaving.pk, leaving.container_id)
        backend = routes.backend_name("web")
        answers, requesters = [], []

        def slow_request():
            conn = http.client.HTTPConnection("127.0.0.1", BIND_PORT, timeout=20)
            try:
                conn.request("GET", "/cgi-bin/slow", headers={"Host": HOST})
                response = conn.getresponse()
                body = response.read().decode().split()
                answers.append((response.status, body[-1:], len(body)))
            except (OSError, http.client.HTTPException) as exc:
                answers.append(repr(exc))
            finally:
                conn.close()

        for _ in range(4):  # until one is on the replica that will go
            requesters.append(threading.Thread(target=slow_request))
            requesters[-1].start()
            time.sleep(0.5)
            if drain.in_flight(backend, server):
                break
        assert drain.in_flight(backend, server), "no request reached slot 2"
        assert fleet.api.post("/api/services/web/scale/", {"replicas": 1}).status_code == 202
        wait_for(lambda: proxy_servers().get(server) == "drain", 10, message="its drain")
        processes.kill(celery_worker)  # the worker that drains it dies
        worker = processes.start("worker", [*WORKER, "--loglevel", "INFO"], process_env)
        try:
            # Its lease lapses (12 s); the reconcile and the converge of the new worker
            # find a container no replica claims, which is still draining.
            for requester in requesters:
                requester.join(SLOW + 30)
            whole = (200, ["done"], SLOW // 5 + 2)  # every tick, then "slow done"
            assert answers == [whole] * len(requesters)
            assert leaving.container_id in inflight.going()  # held for the rest of its drain
            assert fleet.containers("web", leaving.node.name)[leaving.node.name]
        finally:
            processes.kill(worker)
