"""Rollout: a 6-replica service updated under steady HTTP load, Fleet's ingress against Swarm.

Per system, one service of the demo image (health check every second), 6 replicas,
updated from demo:1 to demo:2 with parallelism 2, start-first, monitor 2 s, while wrk
sends a few hundred requests a second through HAProxy (8 connections, 20 ms between a
connection's requests, 1 s timeout); then the same load while a node crashes (its
engine and its containers SIGKILLed). Reported: the update's duration, failed requests
(socket errors and non-2xx answers), slow ones (over 1 s, wrk's timeouts), and for the
crash how long after it the last failure came (from a probe's timestamps).

  Fleet:  its own ingress (HAProxy configured by Fleet, drained before every stop);
  swarm:  Swarm's routing mesh does not work here (no IPVS in this kernel), so its tasks
          publish in host mode and sit behind a second HAProxy with the same build,
          defaults and server checks, fed by a poll of the manager's running tasks every
          250 ms (what a Swarm-aware proxy provider does); Swarm drains nothing itself.

    python -m bench.rollout
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path

import docker
from docker.types import EndpointSpec, Healthcheck, ServiceMode, UpdateConfig

from bench import faults, swarm
from bench.harness import ROOT, api, engines, free_port, remove_service, row, standalone, wait_for
from fleet.ingress.config import CHECK, Backend, render

SERVICE = "roll"
REPLICAS = 6
HOST = "roll.bench"
SECOND = 1_000_000_000
HEALTH = ["CMD", "wget", "-q", "-O", "-", "http://127.0.0.1/health"]
VICTIM = "lab-3"  # lab-1 is Swarm's manager
WRK_SCRIPT = """
wrk.headers["Host"] = "%s"
function delay() return 20 end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d, "p99_ms": %%.1f, "max_ms": %%.1f}\\n', summary.requests,
    e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(99) / 1000,
    latency.max / 1000))
end
"""


class Wrk:
    """wrk against one proxy for `seconds`, in the background; result() waits for its figures."""

    def __init__(self, port, seconds, folder):
        script = Path(folder) / "load.lua"
        script.write_text(WRK_SCRIPT % HOST)
        argv = ["wrk", "-t2", "-c8", f"-d{seconds}s", "--timeout", "1s", "-s", str(script)]
        self.proc = subprocess.Popen(
            [*argv, f"http://127.0.0.1:{port}/"], stdout=subprocess.PIPE, text=True
        )

    def result(self):
        out, _ = self.proc.communicate(timeout=120)
        figures = json.loads(out.strip().splitlines()[-1])
        figures["failed"] = sum(figures[k] for k in ("connect", "read", "write", "status"))
        figures["slow"] = figures["timeout"]
        return figures


class Probe(threading.Thread):
    """One keep-alive connection's requests, ~50 a second, with when each failure came."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.failures, self.count = port, [], 0
        self.stopping = threading.Event()

    def run(self):
        conn = None
        while not self.stopping.is_set():
            conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", "/", headers={"Host": HOST})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.failures.append(time.monotonic())
            except (OSError, http.client.HTTPException):
                self.failures.append(time.monotonic())
                conn.close()
                conn = None
            self.count += 1
            time.sleep(0.02)

    def stop(self):
        self.stopping.set()
        self.join(5)


def crash(name):
    """A node dies: its engine and every process of its containers get SIGKILL."""
    lab = faults.lab()
    lab.kill_node(name)
    folder = Path(f"/sys/fs/cgroup/pids/fleet-{lab.name}-{name.rsplit('-', 1)[1]}")
    for procs in folder.glob("*/cgroup.procs"):
        for pid in procs.read_text().split():
            with suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def under_load(port, folder, seconds, act):
    """Run `act()` 3 s into a wrk run; return (its result, wrk's figures, the probe's
    failure times relative to when act began)."""
    probe = Probe(port)
    probe.start()
    load = Wrk(port, seconds, folder)
    time.sleep(3)
    began = time.monotonic()
    outcome = act()
    figures = load.result()
    probe.stop()
    return outcome, figures, [round(t - began, 2) for t in probe.failures]


# Fleet


def fleet_ready(stack):
    shown = api(stack, "GET", f"/api/services/{SERVICE}/ingress/") or {}
    servers = shown.get("servers", [])
    return len(servers) == REPLICAS and {s["state"] for s in servers} == {"up"}


def fleet_runs(stack, folder, port):
    images = stack.lab["images"]
    spec = {
        "name": SERVICE,
        "image": images["demo_v1"],
        "replicas": REPLICAS,
        "ports": [{"container": 80}],
        "healthcheck": {"command": HEALTH, "interval": 1, "timeout": 2, "retries": 2},
        "update": {"parallelism": 2, "order": "start-first", "monitor": 2},
        "ingress": {"host": HOST, "port": 80},
    }
    api(stack, "POST", "/api/services/", spec)
    wait_for(lambda: fleet_ready(stack), 90, "Fleet's six replicas in the proxy", 0.25)

    def update():
        started = time.monotonic()
        deployment = api(
            stack, "POST", f"/api/services/{SERVICE}/deploy", {"image": images["demo_v2"]}
        )
        path = f"/api/deployments/{deployment['id']}/"
        wait_for(lambda: api(stack, "GET", path)["status"] == "succeeded", 120, "the update", 0.1)
        return round(time.monotonic() - started, 2)

    took, updated, _ = under_load(port, folder, 25, update)
    wait_for(lambda: fleet_ready(stack), 30, "six replicas again", 0.25)
    try:
        _, crashed, failures = under_load(port, folder, 12, lambda: crash(VICTIM))
    finally:
        faults.heal("kill", VICTIM)
    remove_service(stack, SERVICE)
    return {"update_seconds": took, "update": updated, "crash": crashed, "crash_failures": failures}


# Swarm, behind a second HAProxy of the same build and settings


class SwarmProxy:
    """HAProxy with Fleet's defaults and checks, one backend fed from the manager's tasks."""

    def __init__(self, folder):
        self.folder, self.port = Path(folder), free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.admin = self.folder / "admin.sock"
        text, routes = render(
            [Backend("swarm-roll", f"{HOST}/", [])],
            f"127.0.0.1:{self.port}",
            self.admin,
            self.folder / "routes.map",
        )
        (self.folder / "routes.map").write_text(routes)
        (self.folder / "haproxy.cfg").write_text(text)
        subprocess.run(
            ["haproxy", "-W", "-D", "-S", str(self.folder / "master.sock"), "-p"]
            + [str(self.folder / "haproxy.pid"), "-f", str(self.folder / "haproxy.cfg")],
            check=True,
        )
        wait_for(self.admin.exists, 5, "the swarm proxy", 0.05)
        self.stopping = threading.Event()
        self.servers = {}

    def command(self, line):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.admin))
            sock.sendall(line.encode() + b"\n")
            sock.shutdown(socket.SHUT_WR)
            return b"".join(iter(lambda: sock.recv(65536), b"")).decode()

    def feed(self, boss, name):
        addresses = {}
        while not self.stopping.is_set():
            wanted = {}
            for task in boss.api.tasks(filters={"service": name, "desired-state": "running"}):
                if task["Status"]["State"] != "running":
                    continue
                ports = (task["Status"].get("PortStatus") or {}).get("Ports") or []
                if task["NodeID"] not in addresses:
                    addresses[task["NodeID"]] = boss.api.inspect_node(task["NodeID"])["Status"][
                        "Addr"
                    ]
                if ports:
                    wanted[f"t{task['ID'][:12]}"] = (
                        addresses[task["NodeID"]],
                        ports[0]["PublishedPort"],
                    )
            for server, (addr, port) in wanted.items():
                if server not in self.servers:
                    self.command(f"add server swarm-roll/{server} {addr}:{port} {CHECK}")
                    self.command(f"enable health swarm-roll/{server}")
                    self.command(f"set server swarm-roll/{server} health up")
                    self.command(f"set server swarm-roll/{server} state ready")
            for server in set(self.servers) - set(wanted):
                self.command(f"set server swarm-roll/{server} state maint")
                self.command(f"del server swarm-roll/{server}")
            self.servers = wanted
            time.sleep(0.25)

    def up(self):
        return [
            line
            for line in self.command("show servers state swarm-roll").splitlines()[2:]
            if line.split()[5:6] == ["2"]
        ]

    def stop(self):
        self.stopping.set()
        with suppress(OSError, ValueError):
            os.kill(int((self.folder / "haproxy.pid").read_text().split()[0]), signal.SIGTERM)


def swarm_runs(stack, folder):
    images = stack.lab["images"]
    clients = engines(stack)
    names = sorted(clients)
    swarm.form(clients, names[0])
    proxy = None
    boss = clients[names[0]]
    try:
        proxy = SwarmProxy(Path(folder) / "swarm")
        boss.services.create(
            images["demo_v1"],
            name=SERVICE,
            mode=ServiceMode("replicated", REPLICAS),
            healthcheck=Healthcheck(test=HEALTH, interval=SECOND, timeout=2 * SECOND, retries=2),
            update_config=UpdateConfig(
                parallelism=2, order="start-first", monitor=2 * SECOND, failure_action="rollback"
            ),
            endpoint_spec=EndpointSpec(
                ports=[{"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host"}]
            ),
        )
        feeder = threading.Thread(target=proxy.feed, args=(boss, SERVICE), daemon=True)
        feeder.start()
        wait_for(lambda: len(proxy.up()) == REPLICAS, 120, "Swarm's six tasks in the proxy", 0.25)

        def update():
            started = time.monotonic()
            boss.services.get(SERVICE).update(image=images["demo_v2"])

            def completed():
                status = boss.api.inspect_service(SERVICE).get("UpdateStatus") or {}
                return status.get("State") == "completed"

            wait_for(completed, 120, "Swarm's update", 0.1)
            return round(time.monotonic() - started, 2)

        took, updated, _ = under_load(proxy.port, folder, 25, update)
        wait_for(lambda: len(proxy.up()) == REPLICAS, 30, "six tasks again", 0.25)
        try:
            _, crashed, failures = under_load(proxy.port, folder, 12, lambda: crash(VICTIM))
        finally:
            faults.heal("kill", VICTIM)
        return {
            "update_seconds": took,
            "update": updated,
            "crash": crashed,
            "crash_failures": failures,
        }
    finally:
        if proxy is not None:
            proxy.stop()
        with suppress(docker.errors.APIError):
            swarm.leave(clients)


def measure(stack):
    folder = tempfile.mkdtemp(prefix="fleet-rollout-", dir=ROOT / "var")
    port = free_port()
    stack.reconfigure(FLEET_INGRESS_BIND=f"127.0.0.1:{port}", FLEET_INGRESS_DIR=f"{folder}/fleet")
    stack.manage("ingress", "start")
    try:
        fleet = fleet_runs(stack, folder, port)
    finally:
        stack.manage("ingress", "stop")
        stack.reconfigure()  # the stack's defaults again, for whatever runs next
    print(f"fleet: {json.dumps(fleet)}", file=sys.stderr, flush=True)
    try:
        reference = swarm_runs(stack, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"swarm: {json.dumps(reference)}", file=sys.stderr, flush=True)
    details = {"fleet": fleet, "swarm": reference}
    rows = []
    for label, key in (("failed requests", "failed"), ("slow requests (> 1 s)", "slow")):
        f, s = fleet["update"][key], reference["update"][key]
        aim = "0" if key == "failed" else ""
        rows.append(
            row(
                "rollout",
                f"update 6 replicas under load: {label}",
                str(f),
                f"{s} swarm",
                "",
                aim,
                f == 0 if aim else None,
            )
        )
    rows.append(
        row(
            "rollout",
            "update 6 replicas (parallelism 2, start-first, monitor 2 s): duration",
            f"{fleet['update_seconds']:.1f} s",
            f"{reference['update_seconds']:.1f} s swarm",
            f"{fleet['update_seconds'] / reference['update_seconds']:.2f}x",
            "<= 1x",
            fleet["update_seconds"] <= reference["update_seconds"],
        )
    )
    for system, figures in (("fleet", fleet), ("swarm", reference)):
        last = max(figures["crash_failures"], default=0)
        rows.append(
            row(
                "rollout",
                f"{system}: a node crashes under load: failed / slow requests, last failure after",
                f"{figures['crash']['failed']} / {figures['crash']['slow']}, {last:.1f} s",
                "",
                "",
                "< 2 s" if system == "fleet" else "",
                last < 2 if system == "fleet" else None,
            )
        )
    return rows, details


if __name__ == "__main__":
    standalone("rollout", measure)
