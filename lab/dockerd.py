"""Starting a lab node's dockerd: in the node's network namespace, with a UTS namespace of its
own (so `docker info` and swarm show the node's name, not the host's), and for an engine with a
root filesystem of its own (engines.py) inside that root, in a mount namespace of its own.

That mount namespace has private propagation (nothing mounted in it reaches the host, nothing
the host mounts later reaches it) and holds only:
  - the root filesystem, as the lower layer of an overlay whose upper layer is a tmpfs (on
    <run>/<node>.layer): the engine writes where it likes (/tmp, /run ...), the root that every
    lab shares stays as fetched, and what the engine wrote goes with the namespace;
  - a new /proc, a sysfs of the node's network namespace (dockerd sees its own docker0 and
    veths there) with the host's cgroup hierarchies on /sys/fs/cgroup, and the host's /dev;
  - at the same paths as on the host: the node's folder (data-root, daemon.json, pidfile), the
    lab's run folder (exec-root, and the socket the host reaches the engine on), /etc/docker
    (certs.d: the CAs of registries, the lab's private one among them; writable, as a host's is
    to its engine) and, read-only, the TLS files of the lab's CA that the engine serves and
    /etc/resolv.conf;
  - <run>/<node>.shims as /run/containerd, where containerd keeps its shims' sockets: an engine
    started again finds the shims of its running containers there, as the host's engine does.
The overlay becomes the namespace's root with pivot_root, and the host's tree, with every copy
of the host's mounts the namespace was born with (other nodes' netns files, other engines'
overlays), is detached. A chroot would not do: runc joins a container's mount namespace for
`docker exec` and lands on that namespace's root, which under a chroot is the host's. The
namespace ends with the last process in it (dockerd, containerd, shims, docker-proxy), and
the containers' mounts with it.

From the host, such an engine's /proc/PID/exe reads /usr/sbin/dockerd (a path in its root) and
/proc/PID/root reads "/"; the root mount in /proc/PID/mountinfo names the root filesystem
(engines.root_of).
"""

import grp
import json
from pathlib import Path
from types import SimpleNamespace

from lab.engines import HOST, ROOT_MOUNT, Engine
from lab.host import find_procs, needs_key_path, spawn, terminate

ENGINE_PORT = 2376  # an engine's TCP port, with mutual TLS
# The PATH of an engine in a root of its own: its root's, never the host's.
ROOT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# Run by the host's sh in the new namespaces: $0 the hostname, then the root, the layer's
# mount point, binds as MODE FROM TO triples up to "--", then the engine's command. After
# pivot_root, commands come from the root: its umount detaches the host's tree from the
# namespace (mounted on /mnt by then).
ENTER = r"""
set -e
hostname "$0"
root=$1 layer=$2
shift 2
mount -t tmpfs -o mode=0755 fleet-lab-layer "$layer"
mkdir "$layer/upper" "$layer/work"
layers="lowerdir=$root,upperdir=$layer/upper,workdir=$layer/work"
mount -t overlay -o "$layers" ROOT_MOUNT "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
mount --rbind /dev "$root/dev"
while [ "$1" != -- ]; do
  mode=$1 from=$2 to=$root$3
  shift 3
  if [ -d "$from" ]; then mkdir -p "$to"; else mkdir -p "${to%/*}"; : >"$to"; fi
  mount --bind "$from" "$to"
  if [ "$mode" = ro ]; then mount -o remount,bind,ro "$to"; fi
done
shift
mkdir -p "$root/mnt"
cd "$root"
pivot_root . mnt
cd /
umount -l /mnt
exec "$@"
""".replace("ROOT_MOUNT", ROOT_MOUNT)


def spawn_engine(
    n: SimpleNamespace,
    engine: Engine,
    tls: tuple[Path, Path, Path] | None,
    registry: str,
    lab: str,
    run: Path,
) -> int:
    """Start node n's dockerd (tls: the CA, certificate and key it serves its TCP port with,
    None for its socket alone; registry: the lab's plain-HTTP registry; run: the lab's run
    folder), after clearing what a crashed one left; return its pid."""
    (n.dir / engine.data).mkdir(parents=True, exist_ok=True)
    n.exec_root.mkdir(parents=True, exist_ok=True)
    # A stray engine or containerd of this node (pidfile lost) would hold its sockets.
    terminate(find_procs([str(n.sock), f"{n.exec_root}/containerd/containerd.toml"]), 10)
    for stale in (n.pidfile, n.exec_root / "containerd" / "containerd.pid", n.sock):
        stale.unlink(missing_ok=True)
    # An own config file also keeps a host /etc/docker/daemon.json away from the nodes. Engines
    # before 23.0 take their ID from /etc/docker/key.json: all nodes would share it (the kinds
    # with a root of their own are newer).
    key_path = engine.root is None and needs_key_path(engine.dockerd)
    config = {"deprecated-key-path": str(n.dir / "key.json")} if key_path else {}
    (n.dir / "daemon.json").write_text(json.dumps(config))
    # Mutual TLS: anything on the lab's network (a container an operator deploys, say)
    # could otherwise start a privileged container through the engine's API.
    argv = []
    if tls is not None:
        ca, cert, key = (str(path) for path in tls)
        argv += ["--tlsverify", "--tlscacert", ca, "--tlscert", cert, "--tlskey", key]
        argv += ["--host", f"tcp://{n.addr}:{ENGINE_PORT}"]
    for flag, value in (
        ("config-file", n.dir / "daemon.json"),
        ("host", f"unix://{n.sock}"),
        ("data-root", n.dir / engine.data),
        ("exec-root", n.exec_root),
        ("pidfile", n.pidfile),
        ("insecure-registry", registry),
        ("cgroup-parent", f"/fleet-{n.key}"),  # lets down() find a dead engine's containers
        ("shutdown-timeout", 5),
        ("label", f"lab={lab}"),
        ("label", f"fleet.node={n.name}"),
    ):
        argv += [f"--{flag}", str(value)]
    if engine.kind == HOST:
        hostname = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', n.name]
        return spawn(["nsenter", f"--net={n.netns}", *hostname, "dockerd", *argv], n.log)
    assert engine.root is not None  # every kind but the host's has one
    gid = docker_gid()
    with_group = [] if gid is None else ["--group", str(gid)]
    namespaces = ["unshare", "--uts", "--mount", "--propagation", "private"]
    root, command = str(engine.root), ["/usr/sbin/dockerd", *argv, *with_group]
    enter = ["sh", "-c", ENTER, n.name, root, str(n.layer), *root_binds(n, run, tls), "--"]
    for folder in (n.layer, n.shims):
        folder.mkdir(parents=True, exist_ok=True)
    env = {"PATH": ROOT_PATH, **engine.env}  # nothing of the host's environment
    argv = ["nsenter", f"--net={n.netns}", *namespaces, *enter, *command]
    return spawn(argv, n.log, env, inherit=False)


def root_binds(n: SimpleNamespace, run: Path, tls: tuple[Path, Path, Path] | None) -> list[str]:
    """What an engine of node n in a root of its own sees of the host, as MODE FROM TO triples."""
    binds = [("rw", n.dir, n.dir), ("rw", run, run), ("rw", n.shims, Path("/run/containerd"))]
    # /etc/resolv.conf: the containers' DNS servers, as the host's engine gives them.
    shared = [path for path in (Path("/etc/resolv.conf"),) if path.exists()]
    binds += [("ro", path, path) for path in (*(tls or ()), *shared)]
    # Writable, as a host's /etc/docker is to its engine: Fleet writes a registry's CA to
    # certs.d through the engine (a container binding it), and the host's engines see it too.
    binds += [("rw", path, path) for path in (Path("/etc/docker"),) if path.exists()]
    return [str(part) for bind in binds for part in bind]


def docker_gid() -> int | None:
    """The host's docker group, which owns the engines' sockets (a chrooted engine does not
    know the name: its root has no /etc/group), None if the host has none."""
    try:
        return grp.getgrnam("docker").gr_gid
    except KeyError:
        return None
