"""Removing what a lab node left on the host: its processes (shims, docker-proxy and the
containers of an engine that was killed), shim sockets, mounts, netns, veth, folders, cgroups.

An engine chrooted into a root of its own (dockerd.py) mounts nothing on the host: its mount
namespace, and every mount in it, ends with the last of those processes."""

import hashlib
import os
import shutil
import signal
from contextlib import suppress
from pathlib import Path
from types import SimpleNamespace

from lab.host import find_procs, run, signal_all, terminate


def remove_node(n: SimpleNamespace, pid: int | None) -> None:
    """Stop node n (its dockerd is pid) and remove every trace of it."""
    if pid:
        terminate([pid])
    # What a killed engine leaves: containerd shims, docker-proxy and the containers.
    netns = n.netns.stat().st_ino if n.netns.exists() else None
    markers = [f"{n.dir}/", f"{n.exec_root}/", str(n.sock)]
    signal_all(find_procs(markers, netns, f"/fleet-{n.key}"), signal.SIGKILL, 10)
    # Killed shims of the host's containerd leave their sockets in its fixed /run/containerd/s
    # (a chrooted one's are in n.shims).
    address = n.exec_root / "containerd" / "containerd.sock"
    tasks = n.exec_root / "containerd/daemon/io.containerd.runtime.v2.task/moby"
    for task in tasks.glob("*"):
        digest = hashlib.sha256(f"{address}/moby/{task.name}".encode()).hexdigest()
        Path("/run/containerd/s", digest).unlink(missing_ok=True)
    run("ip", "netns", "del", n.ns, check=False)
    n.netns.unlink(missing_ok=True)
    run("ip", "link", "del", n.veth, check=False)
    unmount_under([n.dir, n.exec_root])
    for path in (n.dir, n.exec_root, n.layer, n.shims):
        shutil.rmtree(path, ignore_errors=True)
    n.sock.unlink(missing_ok=True)
    for top in Path("/sys/fs/cgroup").glob(f"*/fleet-{n.key}"):
        for d, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            with suppress(OSError):
                os.rmdir(d)  # cgroups go with rmdir only, deepest first


def unmount_under(dirs: list[Path]) -> None:
    """Unmount what engines left mounted below dirs (overlays, netns files, the data-root)."""
    for _ in range(5):  # mounts may be stacked
        points = [s.split()[4] for s in Path("/proc/self/mountinfo").read_text().splitlines()]
        points = {p for p in points if any(f"{p}/".startswith(f"{d}/") for d in dirs)}
        for point in sorted(points, key=len, reverse=True):
            run("umount", "-l", point, check=False)
        if not points:
            return
