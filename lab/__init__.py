"""A local lab of real Docker engines: two registries and N dockerd nodes, each in its own netns.

Layout of Lab("lab", "10.250.7.0/24"):
  host bridge flb-lab with 10.250.7.1/24, docker-registry on 10.250.7.1:5000 (plain HTTP) and
    on 10.250.7.1:5443 (HTTPS, with a login: see private_registry.py);
  node lab-<i>: netns fleet-lab-<i>, veth flv-lab-<i> <-> eth0 with 10.250.7.(10+i),
    dockerd on unix:///run/fleet-lab/lab/lab-<i>.sock and, with mutual TLS only,
    tcp://10.250.7.(10+i):2376 (certificates from the lab's own CA in tls/, see certs.py);
  state in /var/lib/fleet-lab/lab (state.json, registry/, private-registry/, tls/, lab-<i>/),
  runtime in /run/fleet-lab/lab (lab-<i>/ the exec-root, lab-<i>.sock; lab-<i>.layer/ and
    lab-<i>.shims/ for an engine in a root of its own).
A node runs the host's dockerd unless up() is told another kind of engine for it (see
engines.py: "28" is Docker 28.5 refusing API versions below 1.44, as Docker 29 does, with all
it runs from Debian forky in a root filesystem of its own, kept for every lab in
/var/lib/fleet-lab/engines/rootfs-<version>/; dockerd.py starts it there in a mount namespace
of its own). A node up() is told to reach over SSH has no TCP port: its engine answers on its
socket, reached through its own sshd on ssh://root@10.250.7.(10+i):22 (see ssh.py).

Standard library (`cryptography` for the certificates, `bcrypt` for the private registry's
login): it runs ip, iptables, nsenter, unshare, mount, dockerd, docker-registry, the docker
CLI, and apt-get and dpkg-deb to fetch a root filesystem.
Every step copes with what an earlier or crashed run left behind.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import SimpleNamespace

from lab import engines as lab_engines
from lab import private_registry, registry
from lab import ssh as lab_ssh
from lab.certs import LabCA, node_tls
from lab.cleanup import remove_node, unmount_under
from lab.dockerd import ENGINE_PORT, spawn_engine
from lab.engines import Engine
from lab.host import (
    LabError,
    alive,
    cmdline,
    docker_cli,
    find_procs,
    host_env,
    http_get,
    pid_from,
    ping,
    proc_state,
    run,
    signal_all,
    tail,
    terminate,
)
from lab.image import build_and_push, push_with_login
from lab.network import bridge_rules, setup_bridge, setup_node_net

__all__ = ["Lab", "LabError", "node_fields", "node_tls"]
node_fields = lab_ssh.node_fields

STATE_BASE, RUN_BASE, NETNS = Path("/var/lib/fleet-lab"), Path("/run/fleet-lab"), Path("/run/netns")
REGISTRY_PORT, ENGINE_TIMEOUT = 5000, 60.0
PACKAGES = "docker.io docker-registry busybox-static iproute2 iptables util-linux openssh-server"


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
        self.ca = LabCA(self.root / "tls", name)
        private, folder = f"{self.gateway}:{private_registry.PORT}", self.root / "private-registry"
        self.private = private_registry.PrivateRegistry(folder, private, self.ca)
        self.images["private_v1"] = f"{private}/fleet/private:1"  # demo:1, behind the login

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
            layer=self.run / f"{key}.layer",  # an engine with a root of its own: see dockerd.py
            shims=self.run / f"{key}.shims",
            pidfile=d / "dockerd.pid",
            netns=NETNS / f"fleet-{key}",
        )

    def _pid(self, n: SimpleNamespace) -> int | None:
        return pid_from(n.pidfile, str(n.sock))

    def _state(self) -> dict:
        with suppress(OSError, ValueError):
            if isinstance(state := json.loads((self.root / "state.json").read_text()), dict):
                return state
        return {}

    def _configured(self) -> int:
        with suppress(KeyError, TypeError, ValueError):
            return int(self._state()["nodes"])
        return 0

    def _ssh(self, n: SimpleNamespace) -> SimpleNamespace | None:
        """Where node n's sshd keeps its files if it is reached over SSH, else None."""
        return lab_ssh.paths(n, self.root) if n.name in self._state().get("ssh", []) else None

    def _kind(self, n: SimpleNamespace) -> str:
        """The kind of engine node n runs (state.json names those not of the host's)."""
        return (self._state().get("engines") or {}).get(n.name, lab_engines.HOST)

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
        """Registry, private registry (address, username, password, ca), image refs and, per
        configured node, its endpoints, the paths of the client TLS material that reaches it
        (or for a node behind SSH, its key's path and host key),
        the kind of its engine and its dockerd pid or None."""
        nodes = [self._n(i) for i in range(1, self._configured() + 1)]
        return {
            "registry": self.registry,
            "private_registry": self.private.status(),
            "images": dict(self.images),
            "nodes": [self._entry(n) for n in nodes],
        }

    def _entry(self, n: SimpleNamespace) -> dict:
        ssh = self._ssh(n) and lab_ssh.entry(n, self._ssh(n))
        return {
            "name": n.name,
            "endpoint": ssh["endpoint"] if ssh else f"tcp://{n.addr}:{ENGINE_PORT}",
            "tls": self.ca.client_paths() if self.ca.ready() and not ssh else None,
            "ssh": ssh or None,
            "address": n.addr,
            "engine": self._kind(n),
            "pid": self._pid(n),
            "socket": str(n.sock),
        }

    def up(
        self, nodes: int, engines: dict[str, str] | None = None, ssh: list[str] | None = None
    ) -> dict:
        """Bring up bridge, registry, `nodes` engines and the demo images; idempotent.
        engines maps node names to the kind of engine they run ({"lab-3": "28"}); the
        others run the host's: an engine of another kind is replaced. None: the mix
        FLEET_LAB_ENGINES names (engines.DEFAULT_MIX when unset). ssh names the nodes
        reached over SSH alone (None: those FLEET_LAB_SSH names, comma-separated)."""
        if not 1 <= nodes <= self.max_nodes:
            raise LabError(f"a lab has 1 to {self.max_nodes} nodes, not {nodes}")
        names = [f"lab-{i}" for i in range(1, nodes + 1)]
        engines = lab_engines.mix_from_env(nodes) if engines is None else engines
        kinds = {name: kind for name, kind in engines.items() if kind != lab_engines.HOST}
        if ssh is None:
            listed = os.environ.get("FLEET_LAB_SSH", "").replace(",", " ").split()
            ssh = [name for name in listed if name in names]
        if unknown := sorted((set(engines) | set(ssh)) - set(names)):
            raise LabError(f"no node {', '.join(unknown)} in a lab of {nodes}: {names}")
        if strange := sorted(set(engines.values()) - set(lab_engines.KINDS)):
            raise LabError(f"no engine kind {strange}: the kinds are {lab_engines.KINDS}")
        tools = ["ip", "iptables", "nsenter", "dockerd", "docker-registry", "unshare", "umount"]
        missing = [t for t in tools if not shutil.which(t, path=host_env()["PATH"])]
        if missing or not docker_cli():
            raise LabError(f"missing {missing or 'docker'}: apt-get install -y {PACKAGES}")
        for kind in set(kinds.values()):
            lab_engines.engine(kind)  # fetched now, so a failure leaves the lab as it was
        with self._lock():
            for n in self._leftovers():
                if n.i > nodes:
                    remove_node(n, self._pid(n))
            state = {"nodes": nodes, "engines": kinds, "ssh": sorted(ssh)}
            (self.root / "state.json").write_text(json.dumps(state))
            setup_bridge(self.bridge, f"{self.gateway}/{self.net.prefixlen}", self.name)
            wanted = [self._n(i) for i in range(1, nodes + 1)]
            for n in wanted:
                setup_node_net(n, self.bridge, f"/{self.net.prefixlen}", self.gateway)
            self.ca.ensure({n.key: n.addr for n in wanted})
            registry.start(self.root / "registry", self.registry)
            self.private.start()
            self.private.trust()
            self._start_engines(wanted)
            self._start_ssh(wanted)
            self._ensure_images()
        return self.status()

    def start_node(self, name: str) -> None:
        """(Re)start one engine unless it is running, and wait until it answers."""
        n = self._node_of(name)
        with self._lock():
            setup_bridge(self.bridge, f"{self.gateway}/{self.net.prefixlen}", self.name)
            setup_node_net(n, self.bridge, f"/{self.net.prefixlen}", self.gateway)
            self.ca.ensure({n.key: n.addr})
            self._start_engines([n])
            self._start_ssh([n])

    def _start_ssh(self, nodes: list[SimpleNamespace]) -> None:
        for n in nodes:
            if p := self._ssh(n):
                lab_ssh.prepare(n, p, self.name, docker_cli() or "docker")
                lab_ssh.start(n, p)
            else:
                lab_ssh.kill(n)  # reached over TLS now

    def kill_ssh(self, name: str) -> None:
        """Kill the sshd of a node reached over SSH, and every session it serves."""
        lab_ssh.kill(self._node_of(name))

    def start_ssh(self, name: str, new_host_key: bool = False) -> None:
        """Start the sshd of a node reached over SSH unless it runs (with a new host key)."""
        n = self._node_of(name)
        if new_host_key and (p := self._ssh(n)):
            for path in (p.host_key, Path(f"{p.host_key}.pub")):
                path.unlink(missing_ok=True)
        self._start_ssh([n])

    def allow_ssh_key(self, name: str, allowed: bool) -> None:
        """Put the lab's key in the node's authorized_keys, or take it out (new logins only)."""
        n = self._node_of(name)
        if (p := self._ssh(n)) is None:
            raise LabError(f"{name} is not reached over SSH")
        lab_ssh.authorize(n, p, docker_cli() or "docker", allowed)

    def set_private_password(self, password: str) -> None:
        """Give the private registry's user this password: the old one is refused once this
        returns (the registry restarted if need be); LabError, nothing changed, if it cannot be."""
        private_registry.check_password(password)  # before the lock, which makes the lab's folder
        with self._lock():
            self.private.set_password(password)

    def kill_node(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send sig to the node's dockerd; with SIGKILL, wait until it is gone."""
        if (pid := self._pid(self._node_of(name))) is None:
            return
        if signal_all([pid], sig, 10 if sig == signal.SIGKILL else 0) and sig == signal.SIGKILL:
            raise LabError(f"dockerd {pid} of {name} survives SIGKILL")

    def stop(self) -> None:
        """Stop engines and registry; data, netns and bridge stay for a later up()."""
        with self._lock():
            self._stop()

    def _stop(self) -> None:
        pids = [self._pid(n) for n in self._leftovers()]
        pids += [registry.pid(self.root / "registry"), self.private.pid()]
        terminate([p for p in pids if p is not None])

    def down(self) -> None:
        """Remove everything the lab made: processes, netns, veths, bridge, rules, dirs."""
        with self._lock():
            self._stop()
            self.private.untrust()
            for n in self._leftovers():
                remove_node(n, self._pid(n))
            terminate(find_procs([f"{self.root}/", f"{self.run}/"]), 5)
            for rule in bridge_rules(self.bridge, self.name):
                while run("iptables", "-w", "-C", *rule, check=False).returncode == 0:
                    run("iptables", "-w", "-D", *rule)
            if Path(f"/sys/class/net/{self.bridge}").exists():
                run("ip", "link", "del", self.bridge)
            unmount_under([self.root, self.run])
            shutil.rmtree(self.run, ignore_errors=True)
            for name in ("registry", "private-registry", "build", "docker-cli", "tls", "ssh"):
                shutil.rmtree(self.root / name, ignore_errors=True)
            for name in ("state.json", "lock"):
                (self.root / name).unlink(missing_ok=True)
            for d in (self.root, RUN_BASE, STATE_BASE):
                with suppress(OSError):
                    d.rmdir()  # only if empty: a custom root may hold other things

    def _spawn_engine(self, n: SimpleNamespace, engine: Engine) -> int:
        tls = None if self._ssh(n) else (self.ca.ca, *self.ca.server_paths(n.key))
        return spawn_engine(n, engine, tls, self.registry, self.name, self.run)

    def _start_engines(self, nodes: list[SimpleNamespace]) -> None:
        """Start the engines that do not run, all at once, then wait until each answers."""
        pids = {}
        for n in nodes:
            engine = lab_engines.engine(self._kind(n))
            if (pid := self._pid(n)) is not None and proc_state(pid) == "T":
                os.kill(pid, signal.SIGCONT)  # frozen by kill_node(name, SIGSTOP)
            tls = "--tlsverify" in cmdline(pid) if pid is not None else False
            if pid is not None and not (tls != bool(self._ssh(n)) and engine.runs(pid)):
                terminate([pid])  # an engine on plain TCP, with(out) TLS, or of another kind
                pid = None
            pids[n.name] = pid if pid is not None else self._spawn_engine(n, engine)
        deadline = time.monotonic() + ENGINE_TIMEOUT
        for n in nodes:
            while not ping(n.sock):
                if not alive(pids[n.name]) or time.monotonic() > deadline:
                    what = "exited" if not alive(pids[n.name]) else "did not answer in time"
                    raise LabError(f"dockerd of {n.name} {what}; end of {n.log}:\n{tail(n.log)}")
                time.sleep(0.1)

    def _ensure_images(self) -> None:
        """Build demo:1 and demo:2 on node 1 and push them, unless the registry has them; push
        demo:1 to the private registry as private:1, unless it has it."""
        first = self._n(1)
        api_version = lab_engines.engine(self._kind(first)).api_version
        status, body = http_get(f"http://{self.registry}/v2/fleet/demo/tags/list")
        if status != 200 or not {"1", "2"} <= set(json.loads(body).get("tags") or []):
            demo = {key: ref for key, ref in self.images.items() if key.startswith("demo_")}
            build_and_push(demo, first.sock, self.root, api_version)
        if not self.private.has("fleet/private", "1"):
            source, target = self.images["demo_v1"], self.images["private_v1"]
            login = self.private.status()
            push_with_login(source, target, login, first.sock, self.root, api_version)
