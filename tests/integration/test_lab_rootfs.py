"""The lab's newer engines in root filesystems of their own (lab/engines.py, lab/dockerd.py):
what such an engine runs comes from its root, not the host's, and a node of one leaves
nothing behind when it goes."""

import hashlib
import os
import shutil
import signal
import subprocess
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from lab import engines
from lab.host import alive, cmdline
from tests.system import lab_engine

pytestmark = pytest.mark.lab


def entry_of(lab, name):
    return next(n for n in lab.status()["nodes"] if n["name"] == name)


@contextmanager
def newer_engine(lab):
    """The entry of a node on the "28" engine: the first of the mix, else a fourth node."""
    mix = {n["name"]: n["engine"] for n in lab.status()["nodes"]}
    if newer := [name for name, kind in mix.items() if kind == "28"]:
        yield entry_of(lab, newer[0])
        return
    try:
        yield entry_of(lab, lab.up(4, {**mix, "lab-4": "28"})["nodes"][3]["name"])
    finally:
        lab.up(3, mix)


def pids():
    return [int(pid) for pid in os.listdir("/proc") if pid.isdigit()]


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def children(pid):
    found = []
    for child in pids():
        with suppress(OSError):
            if Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                found.append(child)
    return found


def comm(pid):
    with suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return None


def host_output(*argv):
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def test_the_newer_engine_and_all_it_runs_come_from_a_root_filesystem_of_its_own(lab):
    root = engines.engine("28").root
    packages = dict(line.split() for line in (root.parent / "packages").read_text().splitlines())
    with newer_engine(lab) as entry:
        proc = Path(f"/proc/{entry['pid']}")
        # Its "/" is the lab's overlay on the root filesystem, whose files it sees.
        top = [line for line in (proc / "mountinfo").read_text().splitlines() if " / / " in line]
        assert top and f" - overlay fleet-lab-root rw,lowerdir={root}," in top[-1]
        assert engines.root_of(entry["pid"]) == root
        debian = (proc / "root/etc/debian_version").read_text()
        assert (
            debian
            == (root / "etc/debian_version").read_text()
            != Path("/etc/debian_version").read_text()
        )
        # The libc it maps is the root's, not the host's at the same path.
        libc = next(
            line.split()
            for line in (proc / "maps").read_text().splitlines()
            if line.endswith("/libc.so.6")
        )
        mapped = hashlib.sha256((proc / "map_files" / libc[0]).read_bytes()).hexdigest()
        assert mapped == digest(root / libc[5].lstrip("/")) != digest(libc[5])
        # Its containerd, and the shim, runc and docker-proxy of a container, are the root's.
        (containerd,) = [pid for pid in children(entry["pid"]) if comm(pid) == "containerd"]
        assert digest(f"/proc/{containerd}/exe") == digest(root / "usr/bin/containerd")
        assert digest(root / "usr/bin/containerd") != digest(shutil.which("containerd"))
        client = lab_engine(entry)
        image = lab.status()["images"]["demo_v1"]
        container = client.containers.run(image, detach=True, ports={"80/tcp": 18084})
        try:
            (shim,) = [pid for pid in pids() if container.id in cmdline(pid)]
            assert digest(f"/proc/{shim}/exe") == digest(root / "usr/bin/containerd-shim-runc-v2")
            proxies = [pid for pid in children(entry["pid"]) if comm(pid) == "docker-proxy"]
            assert proxies  # the published port, through the root's docker-proxy
            assert {digest(f"/proc/{pid}/exe") for pid in proxies} == {
                digest(root / "usr/sbin/docker-proxy")
            }
            assert client.api.top(container.id)["Processes"]  # `ps` of the root
            versions = {c["Name"]: c["Version"] for c in client.version()["Components"]}
        finally:
            container.remove(force=True)
            client.close()
    assert versions["runc"] == packages["runc"].rsplit("-", 1)[0]  # Debian's revision aside
    assert versions["runc"] not in host_output("runc", "--version")
    upstream = packages["containerd"].split("+")[0]
    assert versions["containerd"].split("+")[0] == upstream
    assert upstream not in host_output("containerd", "--version")


def mounted(pid, marks):
    """True if process pid's mount namespace holds a mount that names one of marks."""
    with suppress(OSError):
        return any(mark in Path(f"/proc/{pid}/mountinfo").read_text() for mark in marks)
    return False


def in_netns(pid, netns):
    with suppress(OSError):
        return os.stat(f"/proc/{pid}/ns/net").st_ino == netns
    return False


@pytest.mark.parametrize("fault", ["frozen", "killed"])
def test_removing_a_newer_engine_s_node_leaves_no_process_mount_or_cgroup(lab, fault):
    """A node of the "28" kind mounts in a namespace of its own: its engine frozen (SIGSTOP)
    or killed (its shims and containers left running), removing it leaves nothing behind."""
    mix = {n["name"]: n["engine"] for n in lab.status()["nodes"]}
    key = f"{lab.name}-4"
    node_dir, exec_root, layer = lab.root / key, lab.run / key, lab.run / f"{key}.layer"
    marks = [f"{layer}/upper", f" {node_dir} ", f" {exec_root} "]
    try:
        entry = lab.up(4, {**mix, "lab-4": "28"})["nodes"][3]
        client = lab_engine(entry)
        image = lab.status()["images"]["demo_v1"]
        container = client.containers.run(image, detach=True, ports={"80/tcp": 18083})
        container.reload()
        client.close()
        netns = os.stat(f"/run/netns/fleet-{key}").st_ino
        running = [container.attrs["State"]["Pid"]]
        running += [
            pid for pid in pids() if in_netns(pid, netns) or f"{exec_root}/" in cmdline(pid)
        ]
        assert entry["pid"] in running and any(container.id in cmdline(pid) for pid in running)
        assert mounted(entry["pid"], marks)
        assert not mounted(os.getpid(), marks)  # none of them in the host's mount namespace
        lab.kill_node("lab-4", signal.SIGSTOP if fault == "frozen" else signal.SIGKILL)
    finally:
        lab.up(3, mix)  # lab-4 removed
    assert not [pid for pid in running if alive(pid)]
    assert not [pid for pid in pids() if mounted(pid, marks)]
    assert not list(Path("/sys/fs/cgroup").glob(f"*/fleet-{key}"))
    assert not [path for path in (node_dir, exec_root, layer) if path.exists()]
