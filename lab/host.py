"""Host plumbing for the lab: commands, detached daemons, processes and probes.

Standard library only. Every helper copes with what an earlier or crashed run left behind.
"""

import base64
import functools
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path

DAEMONS = ("dockerd", "containerd", "docker-")  # names of the processes an engine or registry runs
# Daemons started by this process: polled so that the dead ones do not linger as zombies.
CHILDREN: dict[int, subprocess.Popen] = {}
# Lab traffic goes to our own bridge only, never through a proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LabError(Exception):
    """A lab operation failed; the message says what and why."""


@functools.cache
def host_env() -> dict[str, str]:
    """Environment for our subprocesses: no proxy variables, sbin directories on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    path = env.get("PATH", "/usr/bin:/bin").split(":")
    env["PATH"] = ":".join(path + [d for d in ("/usr/sbin", "/sbin") if d not in path])
    return env


def run(
    *argv: str,
    check: bool = True,
    env: dict | None = None,
    cwd: Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run a command (input: its stdin); raise LabError with its output if it fails and check
    is set."""
    try:
        p = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=300,
            env=env or host_env(),
            cwd=cwd,
            input=input,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"{' '.join(argv)}: {e}") from e
    if check and p.returncode:
        raise LabError(f"{' '.join(argv)} failed: {(p.stderr or p.stdout).strip()}")
    return p


def spawn(
    argv: list[str], log: Path, env: dict[str, str] | None = None, inherit: bool = True
) -> int:
    """Start a daemon in its own session, so a Ctrl-C aimed at the caller does not reach it;
    env is added to the host's environment (inherit=False: it is the whole environment)."""
    with open(log, "ab") as out:
        p = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=(host_env() if inherit else {}) | (env or {}),
            start_new_session=True,
        )
    CHILDREN[p.pid] = p
    return p.pid


def proc_state(pid: int) -> str | None:
    """The /proc state letter of pid, None once it is gone."""
    if (child := CHILDREN.get(pid)) is not None and child.poll() is not None:
        del CHILDREN[pid]
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    """True if pid runs; zombies do not count (pid 1 here reaps orphans only now and then)."""
    return proc_state(pid) not in (None, "Z", "X")


def cmdline(pid: int | str) -> str:
    """The command line of pid, arguments separated by spaces."""
    with suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def pid_from(pidfile: Path, marker: str) -> int | None:
    """The pid in pidfile if that process runs and is ours (its command line contains marker)."""
    with suppress(OSError, ValueError):
        pid = int(pidfile.read_text())
        return pid if alive(pid) and marker in cmdline(pid) else None
    return None


def signal_all(pids: list[int], sig: int, wait: float = 0) -> list[int]:
    """Send sig to pids, wait up to `wait` seconds for them to end; return those still running."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + wait
    while (pids := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def terminate(pids: list[int], timeout: float = 30.0) -> None:
    """SIGTERM (and SIGCONT in case they are frozen), wait, then SIGKILL the rest."""
    signal_all(pids, signal.SIGTERM)
    if left := signal_all(signal_all(pids, signal.SIGCONT, timeout), signal.SIGKILL, 10):
        raise LabError(f"processes {left} survive SIGKILL")


def find_procs(
    markers: list[str], netns: int | None = None, cgroup: str | None = None
) -> list[int]:
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
        if pid in spared or not alive(pid):
            continue
        with suppress(OSError):
            daemon = Path(f"/proc/{pid}/comm").read_text().startswith(DAEMONS)
            if (
                (daemon and any(m in cmdline(pid) for m in markers))
                or (netns is not None and os.stat(f"/proc/{pid}/ns/net").st_ino == netns)
                or (cgroup and f":{cgroup}/" in Path(f"/proc/{pid}/cgroup").read_text())
            ):
                found.append(pid)
    return found


def ping(sock: Path) -> bool:
    """True if the engine behind the unix socket answers GET /_ping with 200."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return s.recv(32).split(b" ")[1:2] == [b"200"]
    except OSError:
        return False


def http_get(
    url: str, ca: Path | None = None, auth: tuple[str, str] | None = None
) -> tuple[int | None, bytes]:
    """GET a URL on the lab bridge: (status, body), status None when nothing answers or, over
    HTTPS, when the server's certificate is not one the CA in file ca signed for its address;
    auth is a (user, password) for HTTP basic authentication."""
    request = urllib.request.Request(url)  # noqa: S310 - our own bridge
    if auth is not None:
        token = base64.b64encode(":".join(auth).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        opener = HTTP
        if ca is not None:
            tls = urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca))
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), tls)
        with opener.open(request, timeout=3) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except (OSError, http.client.HTTPException):
        return None, b""


def tail(log: Path, lines: int = 20) -> str:
    """The end of a log file, for error messages."""
    with suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


@functools.cache
def needs_key_path(dockerd: str = "dockerd") -> bool:
    """Engines before 23.0 take their ID from /etc/docker/key.json: all nodes would share it."""
    m = re.search(r"version (\d+)\.", run(dockerd, "--version").stdout)
    return bool(m) and int(m[1]) < 23


def docker_cli() -> str | None:
    """Debian's docker.io client (same API version as the engines), else any docker on PATH."""
    return shutil.which("docker", path="/usr/bin") or shutil.which(
        "docker", path=host_env()["PATH"]
    )
