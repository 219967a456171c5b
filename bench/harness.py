"""A whole Fleet for a benchmark: its own Redis, lab, database, worker, beat, watch and web server.

Kept apart from `make run` (lab "b" on 10.250.9.0/24, Redis on 6391, var/bench.sqlite3),
so a benchmark never disturbs a running Fleet, and torn down afterwards.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
LOGS = ROOT / "var" / "bench-logs"

ENV = {
    "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "REDIS_URL": "redis://127.0.0.1:6391/0",
    "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL")
    or f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}",
    "FLEET_LAB_NAME": "b",
    "FLEET_LAB_SUBNET": "10.250.9.0/24",
    "FLEET_NODE_CHECK_INTERVAL": "2",
    "FLEET_RECONCILE_INTERVAL": "2",
    "LOG_LEVEL": "WARNING",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {message}")
        time.sleep(0.1)


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Stack:
    """The running processes, the lab, an API token and the server's address."""

    def __init__(self):
        self.env = {**os.environ, **ENV}
        self.procs = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = None
        self.lab = None

    def manage(self, *args):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
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
            subprocess.Popen(
                [sys.executable, *args],
                cwd=ROOT,
                env=self.env,
                stdout=open(LOGS / f"{name}.log", "w"),  # noqa: SIM115 - lives as long as the process
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def start(self, nodes=3):
        if not listening(6391):
            redis = ["redis-server", "--bind", "127.0.0.1", "--port", "6391", "--save", ""]
            self.procs.append(
                subprocess.Popen(redis, stdout=subprocess.DEVNULL, start_new_session=True)
            )
            wait_for(lambda: listening(6391), 10, "redis")
        if ENV["DATABASE_URL"].startswith("sqlite:///"):
            Path(ENV["DATABASE_URL"].removeprefix("sqlite:///")).unlink(missing_ok=True)
        else:
            self.manage("flush", "--noinput")
        self.manage("migrate", "--noinput")
        self.manage("lab", "up", "--nodes", str(nodes))
        self.lab = json.loads(self.manage("lab", "status", "--json"))
        script = (
            "import django; django.setup();"
            "from django.contrib.auth.models import User;"
            "from rest_framework.authtoken.models import Token;"
            "u = User.objects.create_superuser('bench', password='bench-pass-123');"
            "print(Token.objects.create(user=u).key)"
        )
        self.token = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={**self.env, "DJANGO_SETTINGS_MODULE": "fleet.settings"},
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        self.spawn(
            "worker", "-m", "celery", "-A", "fleet", "worker", "--concurrency", "8", "-l", "WARNING"
        )
        self.spawn(
            "beat",
            "-m",
            "celery",
            "-A",
            "fleet",
            "beat",
            "-l",
            "WARNING",
            "-s",
            str(ROOT / "var" / "bench-beat"),
        )
        self.spawn("watch", "manage.py", "watch", "--rescan", "0.5")
        self.spawn(
            "web", "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "fleet.asgi:application"
        )
        wait_for(lambda: listening(self.port), 30, "the web server")
        return self

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if self.lab is not None:
            self.manage("lab", "down")


@contextmanager
def fleet_stack(nodes=3):
    stack = Stack()
    try:
        yield stack.start(nodes)
    finally:
        stack.stop()


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def record(name, result):
    """Merge one benchmark's result into bench/results.json."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[name] = result
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def table(rows, headers):
    """Print rows as a Markdown table."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
