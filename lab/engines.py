"""The Docker engines a lab node can run, by kind.

  "host": the host's own dockerd (Debian 12's docker.io 20.10, Engine API 1.41 to 1.12).
  "28":   Debian's docker.io 28.5 (Engine API 1.51), started with DOCKER_MIN_API_VERSION=1.44:
          it then refuses every client that asks an API below 1.44 ("client version 1.41 is too
          old. Minimum supported API version is 1.44"), as Docker 29 does by default. It is the
          lab's stand-in for Docker 29, which Debian does not ship yet.

Only the newer package's dockerd and docker-proxy are used: containerd, runc and iptables stay
the host's (bookworm's containerd 1.6, runc 1.1), which dockerd 28 accepts.

The package comes once from Debian's archive through apt-get, with a sources list (forky), index
and cache of the lab's own, so the host's apt sources and packages stay as they are: apt checks
the index's signature with Debian's archive keyring and the package against the index. It is
unpacked in /var/lib/fleet-lab/engines/<version>/, shared by every lab and kept by `lab down`;
remove that folder to fetch again. The pinned version is taken while the archive has it, else
the newest of the same major version there.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
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


@dataclass(frozen=True)
class Engine:
    """A dockerd to start: its binary, its docker-proxy (None: the one on PATH) and environment."""

    kind: str
    dockerd: str
    proxy: str | None = None
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
        """True if process pid is this engine: the same binary, started with its environment."""
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return False
        wanted = [f"{k}={v}".encode() for k, v in self.env.items()]
        return exe == os.path.realpath(self.dockerd) and all(e in environ for e in wanted)


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
    """The engine of a kind, its package fetched and unpacked first if need be."""
    if kind == HOST:
        dockerd = shutil.which("dockerd", path=host_env()["PATH"])
        if dockerd is None:
            raise LabError("no dockerd on PATH: apt-get install -y docker.io")
        return Engine(HOST, dockerd)
    if kind not in PACKAGES:
        raise LabError(f"no engine kind {kind!r}: the kinds are {', '.join(KINDS)}")
    root = unpacked(kind) or fetch(kind)
    sbin = root / "usr" / "sbin"
    return Engine(kind, str(sbin / "dockerd"), str(sbin / "docker-proxy"), PACKAGES[kind].env)


def unpacked(kind: str) -> Path | None:
    """The folder of an unpacked package of this kind: the pinned version, else the newest."""
    pinned = ENGINES / PACKAGES[kind].version
    found = [d for d in ENGINES.glob(f"{kind}.*") if (d / "usr/sbin/dockerd").is_file()]
    return pinned if pinned in found else max(found, key=_version_key, default=None)


def _version_key(path: Path) -> list[int]:
    return [int(part) for part in re.findall(r"\d+", path.name)]


def fetch(kind: str) -> Path:
    """Download and unpack the package of a kind, once: another process may be at it."""
    ENGINES.mkdir(parents=True, exist_ok=True)
    with open(ENGINES / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if root := unpacked(kind):
            return root  # the other process got it
        work = ENGINES / f".fetch-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        try:
            version, deb = _download(kind, work)
            run("dpkg-deb", "-x", str(deb), str(work / "root"))
            if not (work / "root/usr/sbin/dockerd").is_file():
                raise LabError(f"{deb.name} holds no usr/sbin/dockerd")
            os.rename(work / "root", ENGINES / version)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return ENGINES / version


def _download(kind: str, work: Path) -> tuple[str, Path]:
    """Fetch docker.io from Debian's archive with apt-get and state of our own in work."""
    package = PACKAGES[kind]
    for d in ("lists/partial", "cache/archives/partial", "sources.list.d", "deb"):
        (work / d).mkdir(parents=True)
    sources = work / "sources.list"
    sources.write_text(f"deb [signed-by={KEYRING}] {MIRROR} {package.suite} main\n")
    options = {
        "Dir::Etc::SourceList": sources,
        "Dir::Etc::SourceParts": work / "sources.list.d",
        "Dir::State::Lists": work / "lists",
        "Dir::Cache": work / "cache",
        "APT::Sandbox::User": "root",  # the _apt user cannot write into our folder
    }
    apt = [f"-o{key}={value}" for key, value in options.items()]
    where = f"docker.io from {MIRROR} {package.suite}"
    updated = run("apt-get", *apt, "update", check=False)
    versions = [
        line.split("|")[1].strip()
        for line in run("apt-cache", *apt, "madison", "docker.io", check=False).stdout.splitlines()
    ]
    if not versions:
        output = (updated.stderr or updated.stdout).strip()
        raise LabError(f"cannot get {where} for the {kind!r} engine: {output}")
    same_major = [v for v in versions if v.startswith(f"{kind}.")]
    if not same_major:
        raise LabError(f"{where} has {versions}, none of them {kind}.x: add a kind for it")
    version = package.version if package.version in same_major else same_major[0]
    got = run("apt-get", *apt, "download", f"docker.io={version}", check=False, cwd=work / "deb")
    debs = list((work / "deb").glob("*.deb"))
    if got.returncode or len(debs) != 1:
        raise LabError(f"cannot download {where} {version}: {(got.stderr or got.stdout).strip()}")
    return version, debs[0]
