"""A registry's CA on a node's host, where its engine reads it: /etc/docker/certs.d/<server>/ca.crt.

Part of the Docker seam. An engine trusts a registry on a private CA only through that file
on its own host (as `docker pull` does), read anew on every pull, so no restart is needed.
Fleet writes it through the engine's API, so it reaches every node Fleet reaches (TLS or SSH)
with nothing installed there: it loads a tiny image of one empty layer (made here, never
run), creates a container of it with the host's certs.d folder bound, copies the file in
(PUT /containers/{id}/archive writes through the bind to the host) and removes the container.

Each process writes a CA to a node once (it remembers the fingerprint written where); a pull
or lookup that fails on the registry's certificate forgets it, so the next one writes again.
An engine whose certs.d is elsewhere (rootless Docker reads ~/.config/docker/certs.d) is not
served: its host needs the file by hand.
"""

import hashlib
import io
import json
import logging
import secrets
import tarfile
import threading

from docker.errors import ImageNotFound

from fleet.engine.client import CALL_TIMEOUT, SDK_ERRORS, client, failure
from fleet.engine.errors import EngineError
from fleet.engine.node import EngineNode

log = logging.getLogger(__name__)

CERTS_D = "/etc/docker/certs.d"
IMAGE = "fleet/certs-writer:1"
LABEL = "fleet.certs-writer"

_written: dict[tuple[str, str], str] = {}  # (node endpoint, server) -> fingerprint
_lock = threading.Lock()


def fingerprint(pem: str) -> str:
    return hashlib.sha256(pem.encode()).hexdigest()


def _tar(members: dict[str, bytes], folders: tuple[str, ...] = ()) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def image_archive(arch: str) -> bytes:
    """`docker save`'s format for IMAGE: one empty layer, no command, for `arch`."""
    layer = _tar({})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Labels": {LABEL: "1"}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [IMAGE], "Layers": ["layer/layer.tar"]}]
    return _tar(
        {
            config_name: config,
            "layer/layer.tar": layer,
            "manifest.json": json.dumps(manifest).encode(),
        },
        folders=("layer",),
    )


def ensure_ca(node: EngineNode, server: str, pem: str) -> None:
    """Make the node's engine trust `pem` for `server`, unless this process did already.
    EngineError (or EngineUnreachable) when the engine refuses or does not answer."""
    key, mark = (node.endpoint, server), fingerprint(pem)
    with _lock:
        if _written.get(key) == mark:
            return
    api = client(node, CALL_TIMEOUT).api
    try:
        try:
            api.inspect_image(IMAGE)
        except ImageNotFound:  # any other failure is the engine's, raised below
            api.load_image(image_archive(api.version().get("Arch") or "amd64"))
        made = api.create_container(
            IMAGE,
            command=["/none"],  # never started
            name=f"fleet-certs-writer-{secrets.token_hex(4)}",
            labels={LABEL: server},
            network_disabled=True,
            host_config=api.create_host_config(binds=[f"{CERTS_D}:/certs.d:rw"]),
        )
        try:
            archive = _tar({f"{server}/ca.crt": pem.encode()}, folders=(server,))
            if not api.put_archive(made["Id"], "/certs.d", archive):
                raise EngineError(f"the engine did not take {CERTS_D}/{server}/ca.crt")
        finally:
            api.remove_container(made["Id"], force=True)
    except SDK_ERRORS as exc:
        raise failure(exc, CALL_TIMEOUT) from exc
    with _lock:
        _written[key] = mark
    log.info("%s trusts the CA %s for registry %s", node.endpoint, mark[:12], server)


def forget(node: EngineNode, server: str) -> None:
    """Write the CA again before the next pull from `server` on this node."""
    with _lock:
        _written.pop((node.endpoint, server), None)
