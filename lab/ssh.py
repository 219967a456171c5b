"""Lab nodes reachable only over SSH: Debian's openssh-server in the node's namespace.

Such a node's dockerd listens on its unix socket alone, no TCP. Its sshd (`sshd -D -f
<node>/ssh/sshd_config`) listens on the node's address, port 22, with a host key of its
own (made once), and lets root in with the lab's user key only (`<lab>/ssh/id_ed25519`,
ed25519, made once) and only to run that engine's `docker system dial-stdio`: the key's
line in authorized_keys forces the command, and `restrict` takes away the shell,
terminals and forwarding. Fleet reaches the node as ssh://root@ADDRESS:22 with that key.

Standard library only; it runs ssh-keygen, nsenter and sshd.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from contextlib import suppress
from pathlib import Path
from types import SimpleNamespace

from lab.certs import node_tls
from lab.host import LabError, alive, pid_from, run, signal_all, spawn, tail

SSHD, PORT, USER = "/usr/sbin/sshd", 22, "root"
PACKAGE = "openssh-server"
START_TIMEOUT = 10.0


def paths(n: SimpleNamespace, root: Path) -> SimpleNamespace:
    """Where node n's sshd keeps its configuration, keys, pid and log; the lab's user key."""
    d = n.dir / "ssh"
    return SimpleNamespace(
        dir=d,
        config=d / "sshd_config",
        host_key=d / "ssh_host_ed25519_key",
        authorized=d / "authorized_keys",
        pidfile=d / "sshd.pid",
        log=d / "sshd.log",
        user_key=root / "ssh" / "id_ed25519",
    )


def _keygen(path: Path, comment: str) -> None:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path))


def public(path: Path) -> str:
    """A key's public line, "ssh-ed25519 AAAA..." (its comment left out)."""
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


def authorize(n: SimpleNamespace, p: SimpleNamespace, docker: str, allowed: bool = True) -> None:
    """Let the lab's key run the engine's dial-stdio, and nothing else (or not even that)."""
    command = f"DOCKER_HOST=unix://{n.sock} {docker} system dial-stdio"
    line = f'command="{command}",restrict {public(p.user_key)} fleet lab\n'
    p.authorized.write_text(line if allowed else "")
    p.authorized.chmod(0o600)


def prepare(n: SimpleNamespace, p: SimpleNamespace, lab_name: str, docker: str) -> None:
    """Keys and authorized_keys (made once), and sshd_config of node n."""
    if not Path(SSHD).is_file():
        raise LabError(f"no {SSHD}: apt-get install -y {PACKAGE}")
    _keygen(p.user_key, f"fleet lab {lab_name}")
    _keygen(p.host_key, n.name)
    if not p.authorized.exists():  # else as authorize() last left it
        authorize(n, p, docker)
    p.config.write_text(
        f"# sshd of lab node {n.name} (lab/ssh.py): root may run its engine's dial-stdio only.\n"
        f"ListenAddress {n.addr}:{PORT}\n"
        f"HostKey {p.host_key}\n"
        f"PidFile {p.pidfile}\n"
        f"AuthorizedKeysFile {p.authorized}\n"
        "PermitRootLogin forced-commands-only\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "AllowTcpForwarding no\n"
        "X11Forwarding no\n"
        "PermitTTY no\n"
        "PrintMotd no\n"
        "LogLevel VERBOSE\n"
    )


def pid(p: SimpleNamespace) -> int | None:
    """The pid of node's listening sshd, None when it does not run."""
    return pid_from(p.pidfile, str(p.config))


def start(n: SimpleNamespace, p: SimpleNamespace) -> None:
    """Start node n's sshd in its namespace unless it runs; wait until it greets."""
    if pid(p) is not None:
        return
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
    p.pidfile.unlink(missing_ok=True)
    argv = ["nsenter", f"--net={n.netns}", SSHD, "-D", "-f", str(p.config), "-E", str(p.log)]
    started = spawn(argv, p.dir / "sshd.out")
    deadline = time.monotonic() + START_TIMEOUT
    while not greets(n.addr):
        if not alive(started) or time.monotonic() > deadline:
            what = "exited" if not alive(started) else "did not answer in time"
            raise LabError(f"sshd of {n.name} {what}; end of {p.log}:\n{tail(p.log)}")
        time.sleep(0.05)


def greets(address: str) -> bool:
    """True if an SSH server answers on the address with its greeting."""
    with suppress(OSError), socket.create_connection((address, PORT), timeout=1) as s:
        return s.recv(8).startswith(b"SSH-")
    return False


def kill(n: SimpleNamespace) -> None:
    """Kill node n's sshd and every session it serves (each is an sshd of its own)."""
    if not n.netns.exists():
        return
    netns = n.netns.stat().st_ino
    found = []
    for entry in os.listdir("/proc"):
        with suppress(OSError):
            sshd = entry.isdigit() and Path(f"/proc/{entry}/comm").read_text().strip() == "sshd"
            if sshd and os.stat(f"/proc/{entry}/ns/net").st_ino == netns:
                found.append(int(entry))
    if left := signal_all(found, signal.SIGKILL, 10):
        raise LabError(f"sshd processes {left} of {n.name} survive SIGKILL")


def entry(n: SimpleNamespace, p: SimpleNamespace) -> dict:
    """What reaches node n: its endpoint, the path of the user key, the host's key."""
    return {
        "endpoint": f"ssh://{USER}@{n.addr}:{PORT}",
        "key": str(p.user_key),
        "host_key": public(p.host_key) if Path(f"{p.host_key}.pub").exists() else None,
        "pid": pid(p),
    }


def node_fields(entry: dict) -> dict:
    """A node's fields (endpoint, and its TLS or SSH material) from a lab status entry."""
    if not entry.get("ssh"):
        return {"endpoint": entry["endpoint"], **node_tls(entry["tls"])}
    return {
        "endpoint": entry["endpoint"],
        "ssh_key": Path(entry["ssh"]["key"]).read_text(),
        "ssh_host_key": entry["ssh"]["host_key"] or "",
    }
