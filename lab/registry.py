"""The lab's image registry: Debian's docker-registry, plain HTTP on the lab bridge."""

import json
import time
from pathlib import Path

from lab.host import LabError, alive, http_get, pid_from, spawn, tail, terminate


def pid(folder: Path) -> int | None:
    """The pid of the registry kept in folder, if it runs."""
    return pid_from(folder / "pid", str(folder))


def start(folder: Path, address: str) -> None:
    """Start the registry on address (host:port) with its data in folder, unless it answers."""
    url = f"http://{address}/v2/"
    if http_get(url)[0] == 200:
        return
    if running := pid(folder):
        terminate([running], 5)  # running but not answering
    (folder / "data").mkdir(parents=True, exist_ok=True)
    config = {
        "version": "0.1",
        "log": {"level": "info"},
        "storage": {
            "filesystem": {"rootdirectory": str(folder / "data")},
            "delete": {"enabled": True},
        },
        "http": {"addr": address},
    }
    (folder / "config.yml").write_text(json.dumps(config, indent=2))  # JSON is YAML
    started = spawn(["docker-registry", "serve", str(folder / "config.yml")], folder / "log")
    (folder / "pid").write_text(str(started))
    deadline = time.monotonic() + 15
    while http_get(url)[0] != 200:
        if not alive(started) or time.monotonic() > deadline:
            raise LabError(f"registry on {address} did not start:\n{tail(folder / 'log')}")
        time.sleep(0.1)
