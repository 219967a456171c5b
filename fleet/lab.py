"""A local lab of real Docker engines: one registry and N dockerd nodes, each in its own netns.

Layout of Lab("lab", "10.250.7.0/24"):
  host bridge flb-lab with 10.250.7.1/24, docker-registry on 10.250.7.1:5000;
  node lab-<i>: netns fleet-lab-<i>, veth flv-lab-<i> <-> eth0 with 10.250.7.(10+i),
    dockerd on unix:///run/fleet-lab/lab/lab-<i>.sock and tcp://10.250.7.(10+i):2375;
  state in /var/lib/fleet-lab/lab (state.json, registry/, lab-<i>/), runtime in /run/fleet-lab/lab.

Standard library only: it runs ip, iptables, nsenter, dockerd, docker-registry and the docker CLI.
Every step copes with what an earlier or crashed run left behind.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import http.client
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import SimpleNamespace

STATE_BASE, RUN_BASE, NETNS = Path("/var/lib/fleet-lab"), Path("/run/fleet-lab"), Path("/run/netns")
REGISTRY_PORT, ENGINE_PORT, ENGINE_TIMEOUT = 5000, 2375, 60.0
DAEMONS = ("dockerd", "containerd", "docker-")  # names of the processes an engine or registry runs
PACKAGES = "docker.io docker-registry busybox-static iproute2 iptables util-linux"
DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
EXPOSE 80
# httpd runs as PID 1, which ignores SIGTERM: without this every stop waits 10 s before killing.
STOPSIGNAL SIGKILL
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
"""
# Daemons started by this process: polled so that the dead ones do not linger as zombies.
_CHILDREN: dict[int, subprocess.Popen] = {}
# Lab traffic goes to our own bridge only, never through a proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LabError(Exception):
    """A lab operation failed; the message says what and why."""


@functools.cache
def _env() -> dict[str, str]:
    """Environment for our subprocesses: no proxy variables, sbin directories on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    path = env.get("PATH", "/usr/bin:/bin").split(":")
    env["PATH"] = ":".join(path + [d for d in ("/usr/sbin", "/sbin") if d not in path])
    return env


def _run(*argv: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command; raise LabError with its output if it fails and check is set."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env or _env())
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"{' '.join(argv)}: {e}") from e
    if check and p.returncode:
        raise LabError(f"{' '.join(argv)} failed: {(p.stderr or p.stdout).strip()}")
    return p


def _spawn(argv: list[str], log: Path) -> int:
    """Start a daemon in its own session, so a Ctrl-C aimed at the caller does not reach it."""
    with open(log, "ab") as out:
        p = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=_env(),
            start_new_session=True,
        )
    _CHILDREN[p.pid] = p
    return p.pid


def _state(pid: int) -> str | None:
    """The /proc state letter of pid, None once it is gone."""
    if (child := _CHILDREN.get(pid)) is not None and child.poll() is not None:
        del _CHILDREN[pid]
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _live(pid: int) -> bool:
    """True if pid runs; zombies do not count (pid 1 here reaps orphans only now and then)."""
    return _state(pid) not in (None, "Z", "X")


def _cmdline(pid: int | str) -> str:
    """The command line of pid, arguments separated by spaces."""
    with suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def _pid_from(pidfile: Path, marker: str) -> int | None:
    """The pid in pidfile if that process runs and is ours (its command line contains marker)."""
    with suppress(OSError, ValueError):
        pid = int(pidfile.read_text())
        return pid if _live(pid) and marker in _cmdline(pid) else None
    return None


def _kill(pids: list[int], sig: int, wait: float = 0) -> list[int]:
    """Send sig to pids, wait up to `wait` seconds for them to end; return those still running."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + wait
    while (pids := [p for p in pids if _live(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def _terminate(pids: list[int], timeout: float = 30.0) -> None:
    """SIGTERM (and SIGCONT in case they are frozen), wait, then SIGKILL the rest."""
    _kill(pids, signal.SIGTERM)
    if left := _kill(_kill(pids, signal.SIGCONT, timeout), signal.SIGKILL, 10):
        raise LabError(f"processes {left} survive SIGKILL")


def _procs(markers: list[str], netns: int | None = None, cgroup: str | None = None) -> list[int]:
    """Pids of daemons naming a marker, or of anything in netns (an inode) or cgroup (a path)."""
    # Never pid 1, this process or its ancestors; markers only count for daemons of ours, so
    # that, say, a `tail -f` of an engine's log is left alone.
    spared, pid = {1}, os.getpid()
    with suppress(OSError, IndexError, ValueError):
        while pid not in spared:
            spared.add(pid)
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    found = []
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        if pid in spared or not _live(pid):
            continue
        with suppress(OSError):
            daemon = Path(f"/proc/{pid}/comm").read_text().startswith(DAEMONS)
            if (
                (daemon and any(m in _cmdline(pid) for m in markers))
                or (netns is not None and os.stat(f"/proc/{pid}/ns/net").st_ino == netns)
                or (cgroup and f":{cgroup}/" in Path(f"/proc/{pid}/cgroup").read_text())
            ):
                found.append(pid)
    return found


def _ping(sock: Path) -> bool:
    """True if the engine behind the unix socket answers GET /_ping with 200."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return s.recv(32).split(b" ")[1:2] == [b"200"]
    except OSError:
        return False


def _get(url: str) -> tuple[int | None, bytes]:
    """GET a URL on the lab bridge: (status, body), status None when nothing answers."""
    try:
        with _HTTP.open(url, timeout=3) as r:  # noqa: S310 - plain http on our own bridge
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except (OSError, http.client.HTTPException):
        return None, b""


def _tail(log: Path, lines: int = 20) -> str:
    """The end of a log file, for error messages."""
    with suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


@functools.cache
def _needs_key_path() -> bool:
    """Engines before 23.0 take their ID from /etc/docker/key.json: all nodes would share it."""
    m = re.search(r"version (\d+)\.", _run("dockerd", "--version").stdout)
    return bool(m) and int(m[1]) < 23


def _docker_cli() -> str | None:
    """Debian's docker.io client (same API version as the engines), else any docker on PATH."""
    return shutil.which("docker", path="/usr/bin") or shutil.which("docker", path=_env()["PATH"])


class Lab:
    """A registry and N Docker engines on a private bridge; see the module docstring."""

    def __init__(self, name: str = "lab", subnet: str = "10.250.7.0/24", root: Path | None = None):
        if not re.fullmatch(r"[a-z0-9]{1,4}", name):
            raise LabError(f"lab name {name!r} must be 1 to 4 characters of [a-z0-9]")
        try:
            self.net = ipaddress.IPv4Network(subnet)
        except ValueError as e:
            raise LabError(f"bad lab subnet {subnet!r}: {e}") from e
        if (max_nodes := min(99, self.net.num_addresses - 12)) < 1:
            raise LabError(f"lab subnet {subnet} is too small: nodes start at its 11th address")
        self.name, self.bridge, self.max_nodes = name, f"flb-{name}", max_nodes
        self.root, self.run = Path(root) if root else STATE_BASE / name, RUN_BASE / name
        self.gateway = str(self.net.network_address + 1)
        self.registry = f"{self.gateway}:{REGISTRY_PORT}"
        self.images = {f"demo_v{v}": f"{self.registry}/fleet/demo:{v}" for v in (1, 2)}

    @classmethod
    def from_env(cls) -> Lab:
        """The lab given by FLEET_LAB_NAME, FLEET_LAB_SUBNET and FLEET_LAB_DIR (its root)."""
        name = os.environ.get("FLEET_LAB_NAME", "lab")
        root = os.environ.get("FLEET_LAB_DIR")
        return cls(name, os.environ.get("FLEET_LAB_SUBNET", "10.250.7.0/24"), root and Path(root))

    def _n(self, i: int) -> SimpleNamespace:
        """Names, address and paths of node i: registered as lab-<i>; its host resources carry
        the lab's name too (key <lab>-<i>) so that two labs never share a netns, veth or folder."""
        key = f"{self.name}-{i}"
        d = self.root / key
        return SimpleNamespace(
            i=i,
            name=f"lab-{i}",
            key=key,
            ns=f"fleet-{key}",
            veth=f"flv-{key}",
            dir=d,
            log=d / "dockerd.log",
            addr=str(self.net.network_address + 10 + i),
            sock=self.run / f"{key}.sock",
            exec_root=self.run / key,
            pidfile=d / "dockerd.pid",
            netns=NETNS / f"fleet-{key}",
        )

    def _pid(self, n: SimpleNamespace) -> int | None:
        return _pid_from(n.pidfile, str(n.sock))

    def _configured(self) -> int:
        with suppress(OSError, ValueError, KeyError, TypeError):
            return int(json.loads((self.root / "state.json").read_text())["nodes"])
        return 0

    def _node_of(self, name: str) -> SimpleNamespace:
        if name not in self.node_names():
            raise LabError(f"no node {name!r} in lab {self.name!r}: {self.node_names()}")
        return self._n(int(name.rsplit("-", 1)[1]))

    def _leftovers(self) -> list[SimpleNamespace]:
        """Every node that is configured or left anything behind (netns, veth, dirs)."""
        found = set(range(1, self._configured() + 1))
        for d, pre in (
            (NETNS, "fleet-"),
            (Path("/sys/class/net"), "flv-"),
            (self.root, ""),
            (self.run, ""),
        ):
            names = os.listdir(d) if d.is_dir() else []
            found |= {
                int(m[1]) for s in names if (m := re.fullmatch(rf"{pre}{self.name}-(\d+)", s))
            }
        return [self._n(i) for i in sorted(found)]

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise changes to the lab between processes (e.g. parallel test workers)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def node_names(self) -> list[str]:
        """Names of the nodes currently configured (from the state file)."""
        return [f"lab-{i}" for i in range(1, self._configured() + 1)]

    def status(self) -> dict:
        """Registry, image refs and, per configured node, its endpoints and dockerd pid or None."""
        nodes = [self._n(i) for i in range(1, self._configured() + 1)]
        return {
            "registry": self.registry,
            "images": dict(self.images),
            "nodes": [
                {
                    "name": n.name,
                    "endpoint": f"tcp://{n.addr}:{ENGINE_PORT}",
                    "address": n.addr,
                    "pid": self._pid(n),
                    "socket": str(n.sock),
                }
                for n in nodes
            ],
        }

    def up(self, nodes: int) -> dict:
        """Bring up bridge, registry, `nodes` engines and the demo images; idempotent."""
        if not 1 <= nodes <= self.max_nodes:
            raise LabError(f"a lab has 1 to {self.max_nodes} nodes, not {nodes}")
        tools = ["ip", "iptables", "nsenter", "dockerd", "docker-registry", "unshare", "umount"]
        missing = [t for t in tools if not shutil.which(t, path=_env()["PATH"])]
        if missing or not _docker_cli():
            raise LabError(f"missing {missing or 'docker'}: apt-get install -y {PACKAGES}")
        with self._lock():
            for n in self._leftovers():
                if n.i > nodes:
                    self._remove_node(n)
            (self.root / "state.json").write_text(json.dumps({"nodes": nodes}))
            self._setup_bridge()
            wanted = [self._n(i) for i in range(1, nodes + 1)]
            for n in wanted:
                self._setup_node_net(n)
            self._start_registry()
            self._start_engines(wanted)
            self._ensure_images()
        return self.status()

    def start_node(self, name: str) -> None:
        """(Re)start one engine unless it is running, and wait until it answers."""
        n = self._node_of(name)
        with self._lock():
            self._setup_bridge()
            self._setup_node_net(n)
            self._start_engines([n])

    def kill_node(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send sig to the node's dockerd; with SIGKILL, wait until it is gone."""
        if (pid := self._pid(self._node_of(name))) is None:
            return
        if _kill([pid], sig, 10 if sig == signal.SIGKILL else 0) and sig == signal.SIGKILL:
            raise LabError(f"dockerd {pid} of {name} survives SIGKILL")

    def stop(self) -> None:
        """Stop engines and registry; data, netns and bridge stay for a later up()."""
        with self._lock():
            self._stop()

    def _stop(self) -> None:
        pids = [self._pid(n) for n in self._leftovers()]
        pids.append(_pid_from(self.root / "registry" / "pid", str(self.root / "registry")))
        _terminate([p for p in pids if p is not None])

    def down(self) -> None:
        """Remove everything the lab made: processes, netns, veths, bridge, rules, dirs."""
        with self._lock():
            self._stop()
            for n in self._leftovers():
                self._remove_node(n)
            _terminate(_procs([f"{self.root}/", f"{self.run}/"]), 5)
            for rule in self._rules():
                while _run("iptables", "-w", "-C", *rule, check=False).returncode == 0:
                    _run("iptables", "-w", "-D", *rule)
            if Path(f"/sys/class/net/{self.bridge}").exists():
                _run("ip", "link", "del", self.bridge)
            self._unmount_under([self.root, self.run])
            shutil.rmtree(self.run, ignore_errors=True)
            for name in ("registry", "build", "docker-cli"):
                shutil.rmtree(self.root / name, ignore_errors=True)
            for name in ("state.json", "lock"):
                (self.root / name).unlink(missing_ok=True)
            for d in (self.root, RUN_BASE, STATE_BASE):
                with suppress(OSError):
                    d.rmdir()  # only if empty: a custom root may hold other things

    def _rules(self) -> list[tuple[str, ...]]:
        """The iptables rules the lab adds."""
        # The host's dockerd sets FORWARD to DROP and bridged traffic passes iptables here:
        # without these, nodes reach neither each other nor the registry.
        accept = ("-m", "comment", "--comment", f"fleet-lab-{self.name}", "-j", "ACCEPT")
        return [
            ("FORWARD", "-i", self.bridge, "-o", self.bridge, *accept),
            ("INPUT", "-i", self.bridge, *accept),
        ]

    def _setup_bridge(self) -> None:
        if not Path(f"/sys/class/net/{self.bridge}").exists():
            _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "replace", f"{self.gateway}/{self.net.prefixlen}", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for rule in self._rules():
            if _run("iptables", "-w", "-C", *rule, check=False).returncode:
                _run("iptables", "-w", "-I", *rule)

    def _setup_node_net(self, n: SimpleNamespace) -> None:
        # A netns file that is not a mount of its own (e.g. after a reboot) is stale.
        if not n.netns.exists() or n.netns.stat().st_dev == NETNS.stat().st_dev:
            _run("ip", "netns", "del", n.ns, check=False)
            n.netns.unlink(missing_ok=True)
            _run("ip", "netns", "add", n.ns)
        has_peer = _run("ip", "-n", n.ns, "link", "show", "eth0", check=False).returncode == 0
        has_host = Path(f"/sys/class/net/{n.veth}").exists()
        if not (has_peer and has_host):  # half a pair: start over
            _run("ip", "link", "del", n.veth, check=False)
            _run("ip", "-n", n.ns, "link", "del", "eth0", check=False)
            _run("ip", "link", "add", n.veth, "type", "veth", "peer", "name", "eth0", "netns", n.ns)
        _run("ip", "link", "set", n.veth, "master", self.bridge, "up")
        _run("ip", "-n", n.ns, "addr", "replace", f"{n.addr}/{self.net.prefixlen}", "dev", "eth0")
        _run("ip", "-n", n.ns, "link", "set", "eth0", "up")
        _run("ip", "-n", n.ns, "link", "set", "lo", "up")
        _run("ip", "-n", n.ns, "route", "replace", "default", "via", self.gateway)

    def _remove_node(self, n: SimpleNamespace) -> None:
        """Stop node n and remove every trace of it."""
        if pid := self._pid(n):
            _terminate([pid])
        # What a killed engine leaves: containerd shims, docker-proxy and the containers.
        netns = n.netns.stat().st_ino if n.netns.exists() else None
        markers = [f"{n.dir}/", f"{n.exec_root}/", str(n.sock)]
        _kill(_procs(markers, netns, f"/fleet-{n.key}"), signal.SIGKILL, 10)
        # Killed shims leave their sockets in containerd's fixed /run/containerd/s.
        address = n.exec_root / "containerd" / "containerd.sock"
        tasks = n.exec_root / "containerd/daemon/io.containerd.runtime.v2.task/moby"
        for task in tasks.glob("*"):
            digest = hashlib.sha256(f"{address}/moby/{task.name}".encode()).hexdigest()
            Path("/run/containerd/s", digest).unlink(missing_ok=True)
        _run("ip", "netns", "del", n.ns, check=False)
        n.netns.unlink(missing_ok=True)
        _run("ip", "link", "del", n.veth, check=False)
        self._unmount_under([n.dir, n.exec_root])
        for path in (n.dir, n.exec_root):
            shutil.rmtree(path, ignore_errors=True)
        n.sock.unlink(missing_ok=True)
        for top in Path("/sys/fs/cgroup").glob(f"*/fleet-{n.key}"):
            for d, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                with suppress(OSError):
                    os.rmdir(d)  # cgroups go with rmdir only, deepest first

    def _unmount_under(self, dirs: list[Path]) -> None:
        """Unmount what engines left mounted below dirs (overlays, netns files, the data-root)."""
        for _ in range(5):  # mounts may be stacked
            points = [s.split()[4] for s in Path("/proc/self/mountinfo").read_text().splitlines()]
            points = {p for p in points if any(f"{p}/".startswith(f"{d}/") for d in dirs)}
            for point in sorted(points, key=len, reverse=True):
                _run("umount", "-l", point, check=False)
            if not points:
                return

    def _start_registry(self) -> None:
        d, url = self.root / "registry", f"http://{self.registry}/v2/"
        if _get(url)[0] == 200:
            return
        if pid := _pid_from(d / "pid", str(d)):
            _terminate([pid], 5)  # running but not answering
        (d / "data").mkdir(parents=True, exist_ok=True)
        config = {
            "version": "0.1",
            "log": {"level": "info"},
            "storage": {
                "filesystem": {"rootdirectory": str(d / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.registry},
        }
        (d / "config.yml").write_text(json.dumps(config, indent=2))  # JSON is YAML
        pid = _spawn(["docker-registry", "serve", str(d / "config.yml")], d / "log")
        (d / "pid").write_text(str(pid))
        deadline = time.monotonic() + 15
        while _get(url)[0] != 200:
            if not _live(pid) or time.monotonic() > deadline:
                raise LabError(f"registry on {self.registry} did not start:\n{_tail(d / 'log')}")
            time.sleep(0.1)

    def _spawn_engine(self, n: SimpleNamespace) -> int:
        """Start node n's dockerd inside its netns, after clearing what a crashed one left."""
        (n.dir / "data").mkdir(parents=True, exist_ok=True)
        n.exec_root.mkdir(parents=True, exist_ok=True)
        # A stray engine or containerd of this node (pidfile lost) would hold its sockets.
        _terminate(_procs([str(n.sock), f"{n.exec_root}/containerd/containerd.toml"]), 10)
        for stale in (n.pidfile, n.exec_root / "containerd" / "containerd.pid", n.sock):
            stale.unlink(missing_ok=True)
        # An own config file also keeps a host /etc/docker/daemon.json away from the nodes.
        config = {"deprecated-key-path": str(n.dir / "key.json")} if _needs_key_path() else {}
        (n.dir / "daemon.json").write_text(json.dumps(config))
        # An own UTS namespace, so `docker info` and swarm show the node's name, not the host's;
        # --tls=false says "no TLS on purpose", else dockerd sleeps 15 s before listening on TCP.
        hostname = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', n.name]
        argv = ["nsenter", f"--net={n.netns}", *hostname, "dockerd", "--tls=false"]
        for flag, value in (
            ("config-file", n.dir / "daemon.json"),
            ("host", f"unix://{n.sock}"),
            ("host", f"tcp://{n.addr}:{ENGINE_PORT}"),
            ("data-root", n.dir / "data"),
            ("exec-root", n.exec_root),
            ("pidfile", n.pidfile),
            ("insecure-registry", self.registry),
            ("cgroup-parent", f"/fleet-{n.key}"),  # lets down() find a dead engine's containers
            ("shutdown-timeout", 5),
            ("label", f"fleet.lab={self.name}"),
            ("label", f"fleet.node={n.name}"),
        ):
            argv += [f"--{flag}", str(value)]
        return _spawn(argv, n.log)

    def _start_engines(self, nodes: list[SimpleNamespace]) -> None:
        """Start the engines that do not run, all at once, then wait until each answers."""
        pids = {}
        for n in nodes:
            if (pid := self._pid(n)) is not None and _state(pid) == "T":
                os.kill(pid, signal.SIGCONT)  # frozen by kill_node(name, SIGSTOP)
            pids[n.name] = pid if pid is not None else self._spawn_engine(n)
        deadline = time.monotonic() + ENGINE_TIMEOUT
        for n in nodes:
            while not _ping(n.sock):
                if not _live(pids[n.name]) or time.monotonic() > deadline:
                    what = "exited" if not _live(pids[n.name]) else "did not answer in time"
                    raise LabError(f"dockerd of {n.name} {what}; end of {n.log}:\n{_tail(n.log)}")
                time.sleep(0.1)

    def _ensure_images(self) -> None:
        """Build demo:1 and demo:2 from static busybox on node 1 and push them, unless there."""
        status, body = _get(f"http://{self.registry}/v2/fleet/demo/tags/list")
        if status == 200 and {"1", "2"} <= set(json.loads(body).get("tags") or []):
            return
        busybox = Path("/bin/busybox")
        if not busybox.exists() or b"ld-linux" in busybox.read_bytes()[:8192]:
            raise LabError(
                "the demo image needs a static /bin/busybox: apt-get install busybox-static"
            )
        # Classic builder (no buildx plugin needed); a CLI config of our own (no user proxies).
        env = {k: v for k, v in _env().items() if not k.startswith("DOCKER_")}
        env |= {"DOCKER_BUILDKIT": "0", "DOCKER_CONFIG": str(self.root / "docker-cli")}
        docker = [_docker_cli(), "-H", f"unix://{self._n(1).sock}"]
        for v in (1, 2):
            ctx = self.root / "build" / f"v{v}"
            (ctx / "www").mkdir(parents=True, exist_ok=True)
            shutil.copy2(busybox, ctx / "busybox")
            (ctx / "Dockerfile").write_text(DOCKERFILE)
            for page in ("index.html", "health"):
                (ctx / "www" / page).write_text(f"{v}\n")
            _run(*docker, "build", "-q", "-t", self.images[f"demo_v{v}"], str(ctx), env=env)
            _run(*docker, "push", "-q", self.images[f"demo_v{v}"], env=env)
        shutil.rmtree(self.root / "build", ignore_errors=True)
