"""A whole Fleet for a benchmark: its own Redis, lab, database, worker, beat, watch and web server.

Kept apart from `make run` (lab "b" on 10.250.9.0/24, Redis on 6391, var/bench.sqlite3),
so a benchmark never disturbs a running Fleet, and torn down afterwards. BENCH_LAB_NAME,
BENCH_LAB_SUBNET, BENCH_REDIS_URL and BENCH_DATABASE_URL move it elsewhere, for when
another lab or Redis already holds those.

Fleet runs at its default settings (the Procfile's processes and flags): a benchmark that
needs another value says so in its rows and passes it to `Stack.reconfigure`.
"""

import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import docker

from lab import redis as lab_redis
from lab.redis import generated_password

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("BENCH_RESULTS") or ROOT / "bench" / "results.json")
LOGS = ROOT / "var" / "bench-logs"

ENV = {
    "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL")
    or f"redis://:{generated_password('bench-redis-password')}@127.0.0.1:6391/0",
    "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL")
    or f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}",
    "FLEET_LAB_NAME": os.environ.get("BENCH_LAB_NAME") or "b",
    "FLEET_LAB_SUBNET": os.environ.get("BENCH_LAB_SUBNET") or "10.250.9.0/24",
    "LOG_LEVEL": "WARNING",
}
# BENCH_ENGINE_CPU=0.6 runs the lab's engines (each dockerd with its containerd, shims and
# the runc calls they make) on that share of one core between them, through a CPU cgroup
# with a quota: engines as slow as a small, busy VM's, for the runs that must hold there.
# Fleet's processes and the benchmark's clients keep the machine's cores.
ENGINE_CPU = float(os.environ.get("BENCH_ENGINE_CPU") or 0)
ENGINE_CGROUP = Path("/sys/fs/cgroup/cpu") / f"fleet-bench-engines-{ENV['FLEET_LAB_NAME']}"
# Fleet settings a caller's environment may hold (from `make run` or a test run): dropped, so
# that every benchmark measures the defaults unless it sets a value itself and says so.
FLEET_SETTING_PREFIX = "FLEET_"


def redis_port():
    """The port of the bench's Redis (127.0.0.1 only: nothing else is started or reached)."""
    url = urllib.parse.urlsplit(ENV["REDIS_URL"])
    if url.hostname not in ("127.0.0.1", "localhost"):
        raise ValueError(f"BENCH_REDIS_URL must be on 127.0.0.1, not {url.hostname}")
    return url.port or 6379


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, message, interval=0.1):
    """Poll until predicate() is truthy; return its value or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {message}")
        time.sleep(interval)
    return value


def watch(checks, started, timeout=120, interval=0.05):
    """{name: seconds from `started` until checks[name]() first held}, polling them in turn."""
    marks = {}
    while len(marks) < len(checks) and time.perf_counter() < started + timeout:
        for name, check in checks.items():
            if name not in marks and check():
                marks[name] = round(time.perf_counter() - started, 3)
        time.sleep(interval)
    return marks


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Stack:
    """The running processes, the lab, an API token and the server's address."""

    def __init__(self):
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(FLEET_SETTING_PREFIX)}
        self.env = {**inherited, **ENV}
        self.overrides = {}
        self.redis = None
        self.procs = []
        self.pids = {}  # role (worker, alerts, beat, watch, web) -> pid, for bench.cpu
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = None
        self.lab = None

    def manage(self, *args):
        return self.python("manage.py", *args)

    def lab_command(self, *args):
        return self.python("-m", "lab", *args)

    def python(self, *args):
        return subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        ).stdout

    def spawn(self, name, *args):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.procs.append(
            proc := subprocess.Popen(
                [sys.executable, *args],
                cwd=ROOT,
                env=self.env,
                stdout=open(LOGS / f"{name}.log", "a"),  # noqa: SIM115 - lives as long as the process
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        self.pids[name] = proc.pid

    def start(self, nodes=3, ssh=()):
        port = redis_port()
        if not listening(port):
            self.redis = lab_redis.start(
                ENV["REDIS_URL"],
                ROOT / "var",
                subprocess.DEVNULL,
                appendonly=False,
                start_new_session=True,
            )
            wait_for(lambda: listening(port), 10, "redis")
        if ENV["DATABASE_URL"].startswith("sqlite:///"):
            Path(ENV["DATABASE_URL"].removeprefix("sqlite:///")).unlink(missing_ok=True)
        else:
            self.manage("flush", "--noinput")
        for log in LOGS.glob("*.log"):
            log.unlink()
        self.manage("migrate", "--noinput")
        self.lab_command("up", "--nodes", str(nodes), *(f"--ssh={name}" for name in ssh))
        self.lab = json.loads(self.lab_command("status", "--json"))
        if ENGINE_CPU:
            slow_engines(self.lab, ENGINE_CPU)
        script = (
            "import django; django.setup();"
            "from django.contrib.auth.models import User;"
            "from fleet.models import ApiToken;"
            "u = User.objects.create_superuser('bench', password='bench-pass-123');"
            "print(ApiToken.objects.create(user=u, name='bench')[1])"
        )
        self.token = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={**self.env, "DJANGO_SETTINGS_MODULE": "fleet.settings"},
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        self.start_fleet()
        return self

    def start_fleet(self):
        """Workers, beat, watch and web server, as the Procfile starts them (log level aside)."""
        worker = ["-m", "celery", "-A", "fleet", "worker", "-l", "WARNING"]
        self.spawn("worker", *worker, "-Q", "celery", "--concurrency", "8")
        self.spawn("alerts", *worker, "-Q", "alerts", "--concurrency", "2", "-n", "alerts@%h")
        beat_schedule = ROOT / "var" / f"bench-beat-{ENV['FLEET_LAB_NAME']}"
        self.spawn(
            "beat", "-m", "celery", "-A", "fleet", "beat", "-l", "WARNING", "-s", beat_schedule
        )
        self.spawn("watch", "manage.py", "watch")
        self.spawn(
            "web", "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "fleet.asgi:application"
        )
        wait_for(lambda: listening(self.port), 30, "the web server")

    def stop_fleet(self):
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.procs = []

    def reconfigure(self, **settings):
        """Restart Fleet's processes with these settings (str values) on top of the defaults;
        no arguments: back to the defaults."""
        if settings == self.overrides:
            return
        self.stop_fleet()
        for key in self.overrides:
            self.env.pop(key, None)
        self.overrides = dict(settings)
        self.env.update(self.overrides)
        self.start_fleet()

    def stop(self):
        try:
            self.stop_fleet()
            if self.lab is not None:
                self.lab_command("down")
            if ENGINE_CGROUP.exists():
                ENGINE_CGROUP.rmdir()  # empty once the lab's engines are gone
        finally:
            if self.redis is not None:
                self.redis.terminate()
                self.redis.wait(10)


def descendants(pid):
    """pid and every process below it now alive."""
    tree = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                tree.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        found.append(current := todo.pop())
        todo.extend(tree.get(current, []))
    return found


def slow_engines(lab, share):
    """Hold every engine of the lab, with what it starts from now on, to `share` of one core
    between them (a cgroup v1 CPU quota; children stay in their parent's group)."""
    ENGINE_CGROUP.mkdir(exist_ok=True)
    # A short period spreads the quota finely: a slow CPU, not an engine that stops for
    # most of every 100 ms (which would delay one events subscriber and not the next).
    period = 10_000
    (ENGINE_CGROUP / "cpu.cfs_period_us").write_text(str(period))
    (ENGINE_CGROUP / "cpu.cfs_quota_us").write_text(str(int(period * share)))
    for node in lab["nodes"]:
        for pid in descendants(node["pid"]):
            with suppress(ProcessLookupError, OSError):
                (ENGINE_CGROUP / "cgroup.procs").write_text(str(pid))
    print(f"engines held to {share:g} of a core between them", file=sys.stderr, flush=True)


@contextmanager
def fleet_stack(nodes=3, ssh=()):
    """A stack of `nodes` lab nodes, those named in `ssh` reachable over SSH alone."""
    stack = Stack()
    try:
        yield stack.start(nodes, ssh)
    finally:
        stack.stop()


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values):
    return statistics.median(values)


def raise_fd_limit():
    """Allow as many open files as the hard limit does (hundreds of sockets in one process)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def api(stack, method, path, body=None, timeout=30):
    """Call Fleet's REST API as the bench user; return the decoded body (None for 404)."""
    request = urllib.request.Request(
        stack.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {stack.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - ours
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from exc


def engines(stack, timeout=30):
    """A Docker client per lab node, by name: over TLS, or for a node behind SSH on its
    engine's socket (the bench's own view of it, not through Fleet's SSH)."""
    from lab import Lab

    sockets = {
        n["name"]: n["socket"]
        for n in Lab(ENV["FLEET_LAB_NAME"], ENV["FLEET_LAB_SUBNET"]).status()["nodes"]
    }

    class LabTLS(docker.tls.TLSConfig):
        def configure_client(self, client):
            super().configure_client(client)
            client.trust_env = False  # REQUESTS_CA_BUNDLE would take the lab CA's place

    def client(n):
        if n.get("ssh"):
            url = f"unix://{sockets[n['name']]}"
            return docker.DockerClient(base_url=url, version="auto", timeout=timeout)
        tls = LabTLS(
            client_cert=(n["tls"]["cert"], n["tls"]["key"]), ca_cert=n["tls"]["ca"], verify=True
        )
        return docker.DockerClient(base_url=n["endpoint"], version="auto", timeout=timeout, tls=tls)

    return {n["name"]: client(n) for n in stack.lab["nodes"]}


def count_containers(clients, filters, names=None):
    """{node: containers matching filters} on the given nodes (all by default), all states."""
    return {
        name: len(client.api.containers(all=True, filters=filters))
        for name, client in clients.items()
        if names is None or name in names
    }


def remove_containers(client, filters):
    """Force-remove every container on one engine that matches filters; gone already is fine."""
    for container in client.api.containers(all=True, filters=filters):
        with suppress(docker.errors.NotFound):
            client.api.remove_container(container["Id"], force=True)


def remove_service(stack, name, timeout=120):
    """Delete a Fleet service and wait until its row and every container of it are gone."""
    clients = engines(stack)
    if api(stack, "GET", f"/api/services/{name}/") is not None:
        # A service with no replicas can be gone before the API reads it back for its
        # answer (a 500 from Fleet); whether it went is checked below.
        with suppress(RuntimeError):
            api(stack, "DELETE", f"/api/services/{name}/")
    wait_for(
        lambda: api(stack, "GET", f"/api/services/{name}/") is None,
        timeout,
        f"service {name} to be deleted",
        0.25,
    )
    label = {"label": f"fleet.service={name}"}
    wait_for(
        lambda: not any(count_containers(clients, label).values()),
        timeout,
        f"the containers of {name} to be removed",
        0.25,
    )


def row(benchmark, measure, fleet, reference="", ratio="", aim="", met=None):
    """One line of the results table; met is True, False or None (no aim)."""
    return {
        "benchmark": benchmark,
        "measure": measure,
        "fleet": fleet,
        "reference": reference,
        "ratio": ratio,
        "aim": aim,
        "met": met,
    }


def verdict(met):
    return {True: "yes", False: "NO", None: ""}[met]


def fmt_ratio(a, b):
    return f"{a / b:.2f}x" if b else ""


def host_load():
    return [round(x, 2) for x in os.getloadavg()]


def record(name, rows, details):
    """Put one benchmark's rows and details into bench/results.json, replacing its earlier ones."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not isinstance(results.get("benchmarks"), dict):
        results = {"benchmarks": {}}
    results["machine"] = {"cpus": os.cpu_count(), "load_average_at_end": host_load()}
    results["settings"] = {
        **{k: v for k, v in ENV.items() if k.startswith("FLEET_")},
        "other": "Fleet's defaults, unless a row says otherwise",
    }
    results["benchmarks"][name] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "engines_cpu": f"{ENGINE_CPU:g} of a core between them" if ENGINE_CPU else "unlimited",
        "rows": rows,
        "details": details,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def reset_results():
    RESULTS.unlink(missing_ok=True)


def all_rows():
    """Every recorded row, in the order the benchmarks ran."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    return [r for b in (results.get("benchmarks") or {}).values() for r in b["rows"]]


HEADERS = ["benchmark", "measure", "Fleet", "reference", "ratio", "aim", "met?"]


def table(rows):
    """Print result rows as one Markdown table."""
    cells = [
        [r["benchmark"], r["measure"], r["fleet"], r["reference"], r["ratio"], r["aim"]]
        + [verdict(r["met"])]
        for r in rows
    ]
    widths = [max(len(str(c[i])) for c in [HEADERS, *cells]) for i in range(len(HEADERS))]

    def line(values):
        padded = (str(v).ljust(w) for v, w in zip(values, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    print(line(HEADERS))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for values in cells:
        print(line(values))


def standalone(name, measure, **options):
    """Run one benchmark on a stack of its own, record it and print its table."""
    raise_fd_limit()
    with fleet_stack() as stack:
        rows, details = measure(stack, **options)
    record(name, rows, details)
    table(rows)
