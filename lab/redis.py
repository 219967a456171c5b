"""A Redis for the tests and the benchmarks, as `make run` starts its own: bound to
127.0.0.1, with the password its URL carries.

The configuration goes in on standard input, so the password is never on a command line
(which every local user can read in `ps`).
"""

import os
import secrets
import subprocess
from contextlib import suppress
from pathlib import Path
from urllib.parse import unquote, urlsplit

VAR = Path(__file__).resolve().parent.parent / "var"


def generated_password(name: str) -> str:
    """A password generated once into var/NAME (0600, in the private var/), then reused."""
    path = VAR / name
    if not path.exists():
        VAR.mkdir(mode=0o700, exist_ok=True)
        with suppress(FileExistsError):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config(url: str, folder: Path, appendonly: bool = True) -> str:
    """redis.conf's text for the server `url` names (its port and password)."""
    parts = urlsplit(url)
    lines = [
        "bind 127.0.0.1",
        f"port {parts.port or 6379}",
        f"dir {_quoted(str(folder))}",
        'save ""',
        f"appendonly {'yes' if appendonly else 'no'}",
    ]
    if parts.password:
        lines.append(f"requirepass {_quoted(unquote(parts.password))}")
    return "\n".join(lines) + "\n"


def start(url: str, folder: Path, log, appendonly: bool = True, **popen) -> subprocess.Popen:
    """Start redis-server for `url`, its files in `folder`; it writes to `log`."""
    proc = subprocess.Popen(
        ["redis-server", "-"], stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, **popen
    )
    assert proc.stdin is not None
    proc.stdin.write(config(url, folder, appendonly).encode())
    proc.stdin.close()
    return proc
