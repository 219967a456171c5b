"""The real moving parts of the tests: Redis, the Docker lab, Fleet's own processes (worker,
beat, watch, web: started for a test that asks, kept for the next of its module) and a view
of the whole on the lab (LabFleet).

A plugin of the whole suite (conftest.py names it), so that each session-wide part is
made once for every test that asks for it, browser tests and integration tests alike.
"""

import contextlib
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.conf import settings
from django.db import connection

from tests import processes

ROOT = processes.ROOT
LOGS = processes.LOGS


def wait_for(predicate, timeout, interval=0.1, message="condition"):
    """Poll until predicate() is truthy; return its value or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class RedisServer:
    """The tests' Redis, append-only and with a password as in production (bin/services),
    so that a test may restart it and find the queued work still there."""

    def __init__(self, url, folder):
        self.url, self.folder = url, folder
        self.client = redis.Redis.from_url(url)
        self.port = self.client.connection_pool.connection_kwargs["port"]
        self.proc = None

    def start(self):
        from lab import redis as lab_redis

        self.proc = lab_redis.start(self.url, self.folder, open(LOGS / "redis.log", "a"))
        wait_for(lambda: _pings(self.client), 10, message="redis to answer")

    def stop(self):
        """A clean shutdown (the append-only file is flushed)."""
        if self.proc is None:
            pytest.fail(
                f"the Redis on port {self.port} was not started by the tests, so they cannot "
                "restart it: stop it, or point REDIS_URL at a free port"
            )
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A private Redis on the port REDIS_URL names, started unless one answers there."""
    LOGS.mkdir(parents=True, exist_ok=True)
    server = RedisServer(settings.REDIS_URL, tmp_path_factory.mktemp("redis"))
    if not _pings(server.client):
        server.start()
    server.client.flushdb()
    yield server
    if server.proc:
        server.stop()


def _pings(client):
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


@pytest.fixture(scope="session")
def lab():
    """Three real Docker engines, a registry and the demo images, for the whole session."""
    from lab import Lab

    lab = Lab.from_env()
    lab.up(3)  # mixed: lab-3 on a newer engine (lab/engines.py) unless FLEET_LAB_ENGINES says
    yield lab
    lab.down()


def _database_url():
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = f"{db['USER']}:{db['PASSWORD']}@" if db["USER"] else ""
    return f"postgres://{auth}{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="session")
def process_env(django_db_setup, django_db_blocker, redis_server):
    """The environment for Fleet's own processes: the test database and the test Redis."""
    with django_db_blocker.unblock():
        env = {**os.environ, "DATABASE_URL": _database_url()}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set for browser tests only, never for Fleet
    yield env
    processes.kept.end_all_but(())  # before the test database is dropped


# The processes' helpers, under the names the tests have always imported them by.
_start, _stop = processes.start, processes.stop
# The tests' worker consumes both queues, as a small installation's one worker may: the
# alerts worker of the Procfile (ALERTS_WORKER) is started only by the tests that need
# alerts kept apart from converges, which saves a process start in every other test.
WORKER = ["-m", "celery", "-A", "fleet", "worker", "--concurrency", "8", "-n", "test@%h"]
WORKER += ["-Q", "celery,alerts"]
ALERTS_WORKER = ["-m", "celery", "-A", "fleet", "worker", "--concurrency", "2"]
ALERTS_WORKER += ["-n", "test-alerts@%h", "-Q", "alerts", "--without-mingle", "--without-gossip"]


# Each process fixture's process, by the name processes.kept knows it by.
KEPT = {
    "celery_worker": "worker",
    "alerts_worker": "alerts-worker",
    "celery_beat": "beat",
    "watch_process": "watch",
    "server": "web",
}


@pytest.fixture(autouse=True)
def _only_the_processes_asked_for(request):
    """End the processes an earlier test left running that this test does not ask for."""
    processes.kept.end_all_but({KEPT[f] for f in request.fixturenames if f in KEPT})


def _kept(request, name, args, env):
    return processes.kept.get(name, args, env, request.module.__name__)


@pytest.fixture
def celery_worker(request, process_env):
    """A real Celery worker, kept for the module's next test unless this one kills it."""
    proc, _ = _kept(request, "worker", [*WORKER, "--loglevel", "INFO"], process_env)
    return proc


@pytest.fixture
def alerts_worker(request, process_env, celery_worker):
    """The alerts' own worker (the Procfile's `alerts`), beside the worker, ready: a test
    that times alerts must not time this worker's start."""
    from celery import current_app

    args = [*ALERTS_WORKER, "--loglevel", "INFO"]
    proc, was_kept = _kept(request, "alerts-worker", args, process_env)
    name = f"test-alerts@{socket.gethostname()}"
    wait_for(
        lambda: was_kept or current_app.control.ping(destination=[name], timeout=0.5),
        60,
        message="the alerts worker to answer",
    )
    return proc


@pytest.fixture
def beat_env(process_env):
    """The environment of beat; a test module may override it, e.g. to slow the checks."""
    return process_env


@pytest.fixture
def celery_beat(request, beat_env, celery_worker, tmp_path_factory):
    """Celery beat, for the tests that rely on the clock (and only for them)."""
    schedule = tmp_path_factory.getbasetemp() / f"beat-{request.module.__name__}"
    args = ["-m", "celery", "-A", "fleet", "beat", "-s", str(schedule), "--loglevel", "INFO"]
    proc, _ = _kept(request, "beat", args, beat_env)
    return proc


@pytest.fixture
def watch_process(request, process_env):
    """`manage.py watch`, following every node's events."""
    proc, _ = _kept(request, "watch", ["manage.py", "watch", "--rescan", "0.5"], process_env)
    return proc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_web_ports = {}  # module -> the port its daphne listens on, kept with the process


@pytest.fixture
def server(request, process_env, celery_worker, celery_beat, watch_process):
    """Fleet served by daphne on a free localhost port, with worker, beat and watch."""
    port = _web_ports.setdefault(request.module.__name__, free_port())
    args = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "fleet.asgi:application"]
    _kept(request, "web", args, process_env)

    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_for(up, 30, message="daphne to listen")
    return f"http://127.0.0.1:{port}"


def lab_engine(entry, timeout=60):
    """A Docker client for a lab node, over mutual TLS as Fleet reaches it; for a node behind
    SSH, on its engine's socket (the tests' own view of it, not through Fleet's SSH)."""
    import docker

    if entry.get("ssh"):
        return docker.DockerClient(
            base_url=f"unix://{entry['socket']}", version="auto", timeout=timeout
        )

    class LabTLS(docker.tls.TLSConfig):
        def configure_client(self, client):
            super().configure_client(client)
            client.trust_env = False  # REQUESTS_CA_BUNDLE would take the lab CA's place

    tls = LabTLS(
        client_cert=(entry["tls"]["cert"], entry["tls"]["key"]),
        ca_cert=entry["tls"]["ca"],
        verify=True,
    )
    return docker.DockerClient(base_url=entry["endpoint"], version="auto", timeout=timeout, tls=tls)


def lab_node(entry):
    """An unsaved Node for a lab entry, with the lab's TLS material (or SSH key and host key)."""
    from fleet.models import Node
    from lab import node_fields

    return Node(name=entry["name"], **node_fields(entry))


@pytest.fixture
def lab_nodes(lab, redis_server, transactional_db):
    """The lab's engines registered as nodes in the test database."""
    from fleet import nodes

    return [nodes.register(lab_node(entry)) for entry in lab.status()["nodes"]]


class LabFleet:
    """A test's view of Fleet and of the lab's engines, both real."""

    def __init__(self, lab, api):
        self.lab, self.api = lab, api
        status = lab.status()
        self.images = status["images"]
        self.engines = {n["name"]: lab_engine(n) for n in status["nodes"]}
        self.addresses = {n["name"]: n["address"] for n in status["nodes"]}

    def create(self, name, **spec):
        body = {"name": name, "image": self.images["demo_v1"], **spec}
        response = self.api.post("/api/services/", body, format="json")
        assert response.status_code == 201, response.json()
        return response.json()

    def service(self, name):
        return self.api.get(f"/api/services/{name}/").json()

    def replicas(self, name):
        return self.api.get(f"/api/services/{name}/replicas/").json()

    def deployment(self, deployment_id):
        return self.api.get(f"/api/deployments/{deployment_id}/").json()

    def wait_deployment(self, deployment_id, status, timeout=90):
        return wait_for(
            lambda: (d := self.deployment(deployment_id))["status"] == status and d,
            timeout,
            0.2,
            message=f"deployment {deployment_id} to be {status}",
        )

    def containers(self, service, node=None, running_only=False):
        """The service's containers as the engines list them: {node: [container]}."""
        found = {}
        for name, client in self.engines.items():
            if node and name != node:
                continue
            listed = client.containers.list(
                all=not running_only,
                filters={"label": f"fleet.service={service}"},
                ignore_removed=True,  # one may go between the listing and its inspection
            )
            found[name] = listed
        return found

    def count(self, service, **kwargs):
        return sum(len(c) for c in self.containers(service, **kwargs).values())

    def answers(self, container, node, port="80/tcp", timeout=1.0):
        """What the demo httpd in a container answers on its published port, or None."""
        import urllib.request

        container.reload()
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(port) or []
        if not bindings:
            return None
        url = f"http://{self.addresses[node]}:{bindings[0]['HostPort']}/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
                return response.read().decode().strip()
        except OSError:
            return None

    def problems(self, name, count, revision=None, skip=()):
        """How the service differs from converged, as sentences; [] when it is converged.

        Converged: `count` slots, each with exactly one replica row, serving, whose
        container runs on its node (of `revision` when given); the engines (all but
        `skip`) hold no container of the service besides those, and no Fleet container
        at all that no replica row claims (an orphan).
        """
        from fleet.models import Replica

        found = []
        rows = list(Replica.objects.filter(service__name=name).select_related("node", "deployment"))
        slots = sorted(r.slot for r in rows)
        if slots != list(range(1, count + 1)):
            found.append(f"replica rows of slots {slots}, not 1..{count}")
        found += [
            f"slot {r.slot} is {r.state}/{r.health} on {r.node}"
            for r in rows
            if not (r.serving and r.container_id and r.node)
        ]
        if revision is not None:
            found += [
                f"slot {r.slot} runs revision {r.deployment.revision}"
                for r in rows
                if r.deployment.revision != revision
            ]
        claimed = set(
            Replica.objects.exclude(container_id="").values_list("container_id", flat=True)
        )
        mine = {r.container_id: r for r in rows}
        for node, client in self.engines.items():
            if node in skip:
                continue
            listed = client.containers.list(
                all=True, filters={"label": "fleet.service"}, ignore_removed=True
            )
            for c in listed:
                if c.id not in claimed:
                    found.append(f"orphan {c.name} ({c.status}) on {node}")
                elif c.labels.get("fleet.service") == name:
                    row = mine.get(c.id)
                    if row is None or row.node.name != node or c.status != "running":
                        found.append(f"{c.name} is {c.status} on {node}, its row says {row}")
            on_node = {c.id for c in listed}
            found += [
                f"slot {r.slot}'s container is not on {node}"
                for r in rows
                if r.node and r.node.name == node and r.container_id not in on_node
            ]
        return found

    def converged(self, name, count, revision=None, skip=(), timeout=60):
        """Wait until problems() has none: desired count serving, no orphans, no duplicate slot."""
        seen = []

        def settled():
            seen[:] = self.problems(name, count, revision, skip)
            return not seen

        try:
            wait_for(settled, timeout, 0.5, message=f"{name} to converge to {count}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {seen}") from None

    def clean(self):
        """Remove whatever Fleet containers earlier tests left on the engines."""
        import docker

        def remove(container):
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
                # A removal the test's worker asked for before it was killed is under way
                # in the engine: wait for it to end rather than ask twice.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        container.reload()
                    except docker.errors.NotFound:
                        return
                    time.sleep(0.1)
                raise

        # Listed without inspecting each container (sparse), removed all at once.
        listed = [
            container
            for client in self.engines.values()
            for container in client.containers.list(
                all=True, sparse=True, filters={"label": "fleet.service"}
            )
        ]
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(remove, listed))

    def close(self):
        for client in self.engines.values():
            client.close()


@contextlib.contextmanager
def clean_fleet(lab, api):
    """A LabFleet on engines without Fleet's containers, every node ready; cleaned after."""
    from fleet.models import Node

    fleet = LabFleet(lab, api)
    fleet.clean()
    wait_for(
        lambda: set(Node.objects.values_list("status", flat=True)) == {"ready"},
        20,
        message="every lab node to be ready",
    )
    yield fleet
    fleet.clean()
    fleet.close()


@pytest.fixture
def fleet(lab, lab_nodes, celery_worker, celery_beat, api):
    """The whole system on the lab: nodes ready, worker and beat running, engines clean."""
    with clean_fleet(lab, api) as fleet:
        yield fleet
