"""The lab's image registries: Debian's docker-registry (distribution 2.8) on the lab bridge.

The open one speaks plain HTTP (the engines take it with --insecure-registry); the private
one (private_registry.py) speaks HTTPS and needs a login. Each keeps its data, configuration,
pid and log in a folder of its own.
"""

import json
import time
from collections.abc import Callable
from pathlib import Path

from lab.host import LabError, alive, http_get, pid_from, spawn, tail, terminate


def pid(folder: Path) -> int | None:
    """The pid of the registry kept in folder, if it runs."""
    return pid_from(folder / "pid", f"{folder}/")


def config(
    folder: Path,
    address: str,
    tls: tuple[Path, Path] | None = None,
    htpasswd: Path | None = None,
) -> dict:
    """docker-registry's configuration: data in folder, listening on address (host:port);
    HTTPS with tls (certificate and key files); a login of those in the htpasswd file."""
    http: dict = {"addr": address}
    if tls is not None:
        http["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    settings = {
        "version": "0.1",
        "log": {"level": "info"},
        "storage": {
            "filesystem": {"rootdirectory": str(folder / "data")},
            "delete": {"enabled": True},
        },
        "http": http,
    }
    if htpasswd is not None:
        settings["auth"] = {"htpasswd": {"realm": "fleet-lab", "path": str(htpasswd)}}
    return settings


def start(folder: Path, address: str) -> None:
    """Start the open registry on address (host:port) with its data in folder, unless it
    answers."""
    serve(folder, config(folder, address), lambda: http_get(f"http://{address}/v2/")[0] == 200)


def serve(folder: Path, settings: dict, answers: Callable[[], bool], restart: bool = False) -> None:
    """Run docker-registry with settings (see config()) unless answers() says it already
    does as it should; restart: start it again even so. Wait until it answers."""
    if not restart and answers():
        return
    if running := pid(folder):
        terminate([running], 5)  # running but not answering as it should, or restarted
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "config.yml").write_text(json.dumps(settings, indent=2))  # JSON is YAML
    started = spawn(["docker-registry", "serve", str(folder / "config.yml")], folder / "log")
    (folder / "pid").write_text(str(started))
    deadline = time.monotonic() + 15
    while not answers():
        if not alive(started) or time.monotonic() > deadline:
            address = settings["http"]["addr"]
            raise LabError(f"registry on {address} did not start:\n{tail(folder / 'log')}")
        time.sleep(0.1)
