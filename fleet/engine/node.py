"""What the Docker seam needs to know of a node: where its engine listens, and how to reach it.

A Protocol, so the seam's type hints name no model of the domain's (fleet.models.Node
fits it, and so does anything else with these attributes).
"""

from typing import Protocol


class EngineNode(Protocol):
    """A node as the seam sees it: its engine's endpoint and the TLS or SSH material to reach it."""

    @property
    def endpoint(self) -> str: ...

    @property
    def tls_ca(self) -> str: ...

    @property
    def tls_cert(self) -> str: ...

    @property
    def tls_key(self) -> str: ...

    @property
    def uses_tls(self) -> bool: ...

    @property
    def ssh_key(self) -> str: ...

    @property
    def ssh_host_key(self) -> str: ...
