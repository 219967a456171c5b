"""The Docker engines a lab node can run, by kind.

  "host": the host's own dockerd (Debian 12's docker.io 20.10, Engine API 1.41 to 1.12).
  "28":   Debian's docker.io 28.5 (Engine API 1.51), started with DOCKER_MIN_API_VERSION=1.44:
          it then refuses every client that asks an API below 1.44 ("client version 1.41 is too
          old. Minimum supported API version is 1.44"), as Docker 29 does by default. It is the
          lab's stand-in for Docker 29, which Debian does not ship yet.

An engine of a kind other than "host" runs in a root filesystem of its own, so that its
libraries never meet the host's: docker.io and everything it runs, all from the same Debian
suite (forky): glibc and the other libraries, containerd 2.1 and its shim, runc 1.3, iptables
1.8 (nft, as Debian's alternatives pick by default), docker-init (tini-static), ps (procps, for
`docker top`), umount (mount) and base-files (the /bin, /lib64 ... links into /usr); dockerd.py
starts the engine inside it. apt resolves the closure of those packages against an empty dpkg
status and downloads them, and the lab unpacks each with `dpkg-deb -x`: no maintainer script
runs, so the lab itself makes the little they would have made that an engine needs (the
iptables links of update-alternatives, /var/run -> /run). Recommends are left out (git,
xz-utils, ca-certificates: an engine of the lab pulls only from the lab's registries).

The packages come once from Debian's archive through apt-get, with a sources list, index,
dpkg status and cache of the lab's own, so the host's apt sources, state and packages stay as
they are: apt checks the index's signature with Debian's archive keyring and each package
against the index. The root lives in /var/lib/fleet-lab/engines/rootfs-<version>/root/, with
`packages` beside it listing what it holds (for 28.5.2: 34 packages, a 63.6 MB download,
244 MB on disk; the first fetch took 9 to 15 s here). It is shared by every lab and kept by
`lab down`; remove that folder to fetch again. The pinned version is taken while the archive
has it, else the newest of the same major version there.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from lab.host import LabError, host_env, run

ENGINES = Path("/var/lib/fleet-lab/engines")
HOST = "host"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class Package:
    """A docker.io package of Debian's, and how its dockerd is started."""

    version: str  # the version tried first
    suite: str
    env: dict[str, str] = field(default_factory=dict)


# The engines a lab runs unless FLEET_LAB_ENGINES says otherwise: mixed, so that every
# feature meets an engine that refuses old clients beside Debian 12's.
DEFAULT_MIX = "lab-3=28"

PACKAGES = {"28": Package("28.5.2+dfsg4-5", "forky", {"DOCKER_MIN_API_VERSION": "1.44"})}
KINDS = (HOST, *PACKAGES)

# Beside docker.io in an engine's root: what its dockerd runs, that docker.io does not depend
# on or would take from the host (ps, for `docker top`), base-files, and umount, with which
# the engine's namespace lets go of the host's mounts (dockerd.py). The smallest of the
# sysusers providers docker.io depends on, or apt would pick the whole of systemd.
ROOT_PACKAGES = (
    "base-files",
    "containerd",
    "runc",
    "iptables",
    "tini-static",
    "procps",
    "mount",
    "systemd-standalone-sysusers",
)
ROOTFS = "rootfs-"  # the prefix of a root filesystem's folder
ROOT_MOUNT = "fleet-lab-root"  # the source name of the overlay an engine runs in
# What a root must hold to be taken: the engine, what it runs, and the libc they load.
ROOT_FILES = (
    "usr/sbin/dockerd",
    "usr/sbin/docker-proxy",
    "usr/bin/containerd",
    "usr/bin/containerd-shim-runc-v2",
    "usr/sbin/runc",
    "usr/sbin/xtables-nft-multi",
    "usr/bin/ps",
    "usr/bin/umount",
    "usr/lib/*/libc.so.6",
)


@dataclass(frozen=True)
class Engine:
    """A dockerd to start: its binary (a path on the host), the root filesystem it runs in
    (None: the host's) and its environment."""

    kind: str
    dockerd: str
    root: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> str:
        """The name of the node's data-root for this kind: an engine never gets a data-root
        that a newer one wrote (downgrades are not supported)."""
        return "data" if self.kind == HOST else f"data-{self.kind}"

    @property
    def api_version(self) -> str | None:
        """The API version a client must ask at least, None if the engine takes any."""
        return self.env.get("DOCKER_MIN_API_VERSION")

    def runs(self, pid: int) -> bool:
        """True if process pid is this engine: the same binary, in the same root, started
        with its environment. (A process pivoted into a root of its own reads its exe as a path
        inside that root, and its root as "/": root_of() tells the roots apart.)"""
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            root = root_of(pid)
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return False
        wanted = [f"{k}={v}".encode() for k, v in self.env.items()]
        inside = os.path.realpath(self.dockerd)
        if self.root is not None:
            inside = f"/{Path(inside).relative_to(os.path.realpath(self.root))}"
        return (
            exe == inside
            and root == Path(os.path.realpath(self.root or "/"))
            and all(e in environ for e in wanted)
        )


def root_of(pid: int) -> Path | None:
    """The folder process pid runs in as its root: "/" if it shares the host's root, the root
    filesystem whose overlay it was pivoted into (dockerd.py), else None."""
    if _inode(f"/proc/{pid}/root") == _inode("/"):
        return Path("/")
    return root_layer(Path(f"/proc/{pid}/mountinfo").read_text())


def root_layer(mountinfo: str) -> Path | None:
    """The lower layer of the lab's overlay mounted on "/" in a process's mountinfo, if any."""
    lower = None
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        after = fields[fields.index("-", 6) + 1 :] if "-" in fields[6:] else []
        if fields[4] == "/" and after[:2] == ["overlay", ROOT_MOUNT] and len(after) > 2:
            options = dict(option.partition("=")[::2] for option in after[2].split(","))
            lower = options.get("lowerdir") or None  # the last mount on "/" is the one it sees
    return Path(lower) if lower else None


def _inode(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def parse_mix(text: str) -> dict[str, str]:
    """NODE=KIND pairs, comma-separated ("lab-3=28"), as a dict; "" or "host": none."""
    mix: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part == HOST:
            continue
        node, _, kind = part.partition("=")
        if not re.fullmatch(r"lab-\d{1,2}", node) or kind not in KINDS:
            raise LabError(f"{part!r} is not NODE=KIND, KIND one of {', '.join(KINDS)}")
        mix[node] = kind
    return mix


def mix_from_env(nodes: int) -> dict[str, str]:
    """The engines FLEET_LAB_ENGINES names (DEFAULT_MIX when unset) for a lab of `nodes`:
    a node past them is left out, so a smaller lab runs the host's engine only."""
    mix = parse_mix(os.environ.get("FLEET_LAB_ENGINES", DEFAULT_MIX))
    return {node: kind for node, kind in mix.items() if int(node.split("-")[1]) <= nodes}


def engine(kind: str) -> Engine:
    """The engine of a kind, its root filesystem fetched first if need be."""
    if kind == HOST:
        dockerd = shutil.which("dockerd", path=host_env()["PATH"])
        if dockerd is None:
            raise LabError("no dockerd on PATH: apt-get install -y docker.io")
        return Engine(HOST, dockerd)
    if kind not in PACKAGES:
        raise LabError(f"no engine kind {kind!r}: the kinds are {', '.join(KINDS)}")
    root = (fetched(kind) or fetch(kind)) / "root"
    return Engine(kind, str(root / "usr/sbin/dockerd"), root, PACKAGES[kind].env)


def fetched(kind: str) -> Path | None:
    """The folder of this kind's root filesystem (rootfs-<version>: its root/ and the list of
    its packages): the pinned version, else the newest. A folder of an unpacked package alone
    (<version>, as the lab once kept) is not one."""
    pinned = ENGINES / f"{ROOTFS}{PACKAGES[kind].version}"
    found = [d for d in ENGINES.glob(f"{ROOTFS}{kind}.*") if complete(d)]
    return pinned if pinned in found else max(found, key=_version_key, default=None)


def complete(folder: Path) -> bool:
    """True if folder holds a root filesystem as fetch() leaves it."""
    root = folder / "root"
    return (folder / "packages").is_file() and all(
        any(path.is_file() for path in root.glob(pattern)) for pattern in ROOT_FILES
    )


def _version_key(path: Path) -> list[int]:
    return [int(part) for part in re.findall(r"\d+", path.name)]


def fetch(kind: str) -> Path:
    """Download the packages of a kind's root filesystem and unpack them, once: another
    process may be at it. The folder appears complete or not at all (a rename)."""
    ENGINES.mkdir(parents=True, exist_ok=True)
    with open(ENGINES / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if folder := fetched(kind):
            return folder  # the other process got it
        work = ENGINES / f".fetch-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        try:
            version, debs = _download(kind, work)
            listed = unpack(debs, work / "rootfs" / "root")
            (work / "rootfs" / "packages").write_text("".join(f"{p} {v}\n" for p, v in listed))
            if not complete(work / "rootfs"):
                raise LabError(f"the packages of docker.io {version} lack one of {ROOT_FILES}")
            target = ENGINES / f"{ROOTFS}{version}"
            shutil.rmtree(target, ignore_errors=True)  # incomplete: an interrupted removal
            os.rename(work / "rootfs", target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return ENGINES / f"{ROOTFS}{version}"


def unpack(debs: list[Path], root: Path) -> list[tuple[str, str]]:
    """Unpack the packages into root (base-files first: its links into /usr must be there
    before anything lands below them), then make what their maintainer scripts would have
    made that an engine needs; return (package, version) of each."""
    listed = []
    root.mkdir(parents=True)
    for deb in sorted(debs, key=lambda d: (not d.name.startswith("base-files_"), d.name)):
        run("dpkg-deb", "-x", str(deb), str(root))
        fields = run("dpkg-deb", "--field", str(deb), "Package", "Version").stdout
        listed.append(parse_fields(fields))
    sbin = root / "usr/sbin"
    for command, backend in alternatives():
        (sbin / command).unlink(missing_ok=True)
        (sbin / command).symlink_to(backend)  # update-alternatives, as iptables' postinst
    for link, target in (("var/run", "/run"), ("var/lock", "/run/lock")):  # as base-files'
        with suppress(FileNotFoundError):
            (root / link).rmdir()
        (root / link).symlink_to(target)
    return sorted(listed)


def alternatives() -> list[tuple[str, str]]:
    """The links update-alternatives makes for iptables by default: the nft backend."""
    return [
        (f"{family}{tool}", f"{family}-nft{tool}")
        for family in ("iptables", "ip6tables")
        for tool in ("", "-save", "-restore")
    ]


def parse_fields(text: str) -> tuple[str, str]:
    """(Package, Version) from `dpkg-deb --field DEB Package Version`."""
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    try:
        return fields["Package"].strip(), fields["Version"].strip()
    except KeyError as e:
        raise LabError(f"a package without {e}: {text!r}") from e


def _download(kind: str, work: Path) -> tuple[str, list[Path]]:
    """Fetch docker.io and the closure of what it and ROOT_PACKAGES need from Debian's archive
    with apt-get and state of our own in work; return docker.io's version and the packages."""
    package = PACKAGES[kind]
    for d in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
        (work / d).mkdir(parents=True)
    sources, status = work / "sources.list", work / "status"
    sources.write_text(f"deb [signed-by={KEYRING}] {MIRROR} {package.suite} main\n")
    status.write_text("")  # nothing installed: apt resolves every dependency
    options = {
        "Dir::Etc::SourceList": sources,
        "Dir::Etc::SourceParts": work / "sources.list.d",
        "Dir::Etc::Preferences": work / "preferences",  # the host's pins are not ours
        "Dir::Etc::PreferencesParts": work / "preferences.d",
        "Dir::State::Lists": work / "lists",
        "Dir::State::status": status,
        "Dir::Cache": work / "cache",
        "APT::Sandbox::User": "root",  # the _apt user cannot write into our folder
    }
    apt = [f"-o{key}={value}" for key, value in options.items()]
    where = f"docker.io from {MIRROR} {package.suite}"
    updated = run("apt-get", *apt, "update", check=False)
    madison = run("apt-cache", *apt, "madison", "docker.io", check=False).stdout
    versions = [line.split("|")[1].strip() for line in madison.splitlines()]
    if not versions:
        output = (updated.stderr or updated.stdout).strip()
        raise LabError(f"cannot get {where} for the {kind!r} engine: {output}")
    same_major = [v for v in versions if v.startswith(f"{kind}.")]
    if not same_major:
        raise LabError(f"{where} has {versions}, none of them {kind}.x: add a kind for it")
    version = package.version if package.version in same_major else same_major[0]
    wanted = [f"docker.io={version}", *ROOT_PACKAGES]
    install = ["install", "--download-only", "--no-install-recommends", "--yes", *wanted]
    got = run("apt-get", *apt, *install, check=False)
    debs = sorted((work / "cache/archives").glob("*.deb"))
    if got.returncode or not any(d.name.startswith("docker.io_") for d in debs):
        raise LabError(f"cannot download {where} {version}: {(got.stderr or got.stdout).strip()}")
    return version, debs
