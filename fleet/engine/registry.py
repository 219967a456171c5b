"""What a registry holds for a tag, and what a node's replicas run: image digests.

Part of the Docker seam: it reaches engines only through fleet.engine.client's clients
(and imports nothing of Docker's). The registry is asked through a node's engine
(GET /distribution/{image}/json), with the same credentials a pull sends, so it
sees the registry as the nodes do: their insecure-registry settings, proxies and
network included.
"""

from django.conf import settings

from fleet import engine
from fleet.engine import trust
from fleet.engine.errors import (
    PULL_UNAUTHORIZED,
    PULL_UNTRUSTED,
    EngineError,
    EngineUnreachable,
    reason_of,
    refused_access,
    registry_of,
)
from fleet.engine.labels import SERVICE
from fleet.engine.node import EngineNode


class RegistryError(EngineError):
    """The registry did not answer the node, or refused: the message says which."""


def registry_digest(
    node: EngineNode, image: str, timeout: float, auth: dict[str, str] | None = None
) -> str:
    """The digest the registry serves for `image` (a tag) now, asked through `node` with
    the login `auth` (the one a pull would send).

    Raises RegistryError when the registry does not answer within `timeout` seconds or
    refuses, EngineUnreachable when the node itself does not answer.
    """
    registry = registry_of(image)
    api = engine.client(node, timeout).api
    try:
        found = api.inspect_distribution(image, auth_config=auth)
    except engine.SDK_ERRORS as exc:
        problem = engine.failure(exc, timeout)
        if isinstance(problem, EngineUnreachable):
            # Silence is the node's fault only if it fails its ping too.
            engine.ping(node, settings.FLEET_NODE_PING_TIMEOUT)
            raise RegistryError(
                f"registry {registry} did not answer within {timeout:g} s (asked through {node})"
            ) from exc
        said = getattr(exc, "explanation", None) or str(exc)
        reason = reason_of(said)
        if reason == PULL_UNTRUSTED:
            trust.forget(node, registry)  # written again before the next look
        what = refused_access(registry) if reason == PULL_UNAUTHORIZED else f"registry {registry}"
        raise RegistryError(f"{what} (asked through {node}): {said}") from exc
    digest = (found.get("Descriptor") or {}).get("digest") or ""
    if not digest.startswith("sha256:"):
        raise RegistryError(f"registry {registry} gave no digest for {image}")
    return digest


def running_digests(
    node: EngineNode, timeout: float, service: str | None = None
) -> dict[str | None, dict[str, list[str]]]:
    """{service name: {image id: [repository digests]}} of the running containers Fleet
    made on `node` (of one service when named): what their replicas really run.

    An image that was never pulled or pushed has no repository digest (an empty list).
    """
    api = engine.client(node, timeout).api
    label = f"{SERVICE}={service}" if service else SERVICE
    try:
        rows = api.containers(filters={"label": label, "status": "running"})
        found: dict[str | None, dict[str, None]] = {}
        for row in rows:
            name = (row.get("Labels") or {}).get(SERVICE)
            found.setdefault(name, {}).setdefault(row.get("ImageID") or "", None)
        digests: dict[str, list[str]] = {}
        for image_id in {i for images in found.values() for i in images if i}:
            repo_digests = api.inspect_image(image_id).get("RepoDigests") or []
            digests[image_id] = [d.partition("@")[2] for d in repo_digests if "@" in d]
    except engine.SDK_ERRORS as exc:
        raise engine.failure(exc, timeout) from exc
    return {
        name: {image_id: digests.get(image_id, []) for image_id in images}
        for name, images in found.items()
    }
