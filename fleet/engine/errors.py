"""What can go wrong with an engine, as the Docker seam (fleet.engine.client) raises it.

Imports nothing of Docker's: a pull's failure is read from the engine's own words,
so the reasons can be tried without an engine.
"""


class EngineError(Exception):
    """A Docker engine could not be reached or refused a request."""


class EngineUnreachable(EngineError):
    """The engine did not answer at all (refused connection, timeout): the node's fault,
    not the request's."""


# Docker Hub's other names: an image or a login naming one of them means Docker Hub.
HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")


def registry_of(image: str) -> str:
    """The registry an image is pulled from: its first part if Docker reads it as a host
    (a dot, a port or localhost), else Docker Hub ("docker.io", whatever name it goes by).
    Spec validation and the choice of a pull's credentials use it too."""
    first = image.split("/", 1)[0] if "/" in image else ""
    if "." in first or ":" in first or first == "localhost":
        host = first.lower()
        return "docker.io" if host in HUB_NAMES else host
    return "docker.io"


class PullError(EngineError):
    """An image could not be pulled: the service's problem, never the node's.

    `reason` is one of the PULL_* values below, so callers can back off without
    parsing the message.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


PULL_UNREACHABLE, PULL_NOT_FOUND, PULL_UNAUTHORIZED = "unreachable", "not-found", "unauthorized"
PULL_TIMED_OUT, PULL_BUSY, PULL_OTHER = "timed-out", "busy", "other"
PULL_UNTRUSTED = "untrusted"

# What the engine says when a pull fails, by what went wrong; the first match wins.
_PULL_REASONS = (
    (PULL_UNAUTHORIZED, ("unauthorized", "authentication required", "denied", "no basic auth")),
    (PULL_UNTRUSTED, ("x509:", "certificate signed by unknown authority", "tls: failed to verify")),
    (PULL_NOT_FOUND, ("not found", "manifest unknown", "does not exist", "name unknown")),
    (
        PULL_UNREACHABLE,
        (
            "dial tcp",
            "connection refused",
            "no such host",
            "i/o timeout",
            "timeout",
            "deadline exceeded",
            "request canceled",
            "no route to host",
            "network is unreachable",
            "connection reset",
            "eof",
        ),
    ),
)


def reason_of(detail: str) -> str:
    """The PULL_* reason an engine's message about a pull (or a registry lookup) gives."""
    lowered = detail.lower()
    return next(
        (reason for reason, words in _PULL_REASONS if any(w in lowered for w in words)), PULL_OTHER
    )


def refused_access(registry: str) -> str:
    return f"registry {registry} refused access (check its credentials)"


def pull_failure(image: str, detail: str) -> PullError:
    """The PullError for an engine's message about a failed pull of `image`."""
    text = detail.strip() or "the engine gave no reason"
    reason = reason_of(text)
    registry = registry_of(image)
    summary = {
        PULL_UNAUTHORIZED: refused_access(registry),
        PULL_UNTRUSTED: f"the node does not trust registry {registry}'s certificate (keep its CA "
        "with the registry's login)",
        PULL_NOT_FOUND: f"registry {registry} does not have it",
        PULL_UNREACHABLE: f"registry {registry} cannot be reached from the node",
        PULL_OTHER: "the pull failed",
    }[reason]
    return PullError(f"cannot pull {image}: {summary}: {text}", reason)
