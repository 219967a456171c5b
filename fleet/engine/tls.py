"""TLS to an engine: one SSL context per node, from key material that never rests in a file.

Part of the Docker seam (fleet.engine.client uses it to build a client); it needs only
the standard library and requests.
"""

import os
import ssl
from typing import Any

import requests

from fleet.engine.errors import EngineError
from fleet.engine.node import EngineNode


class ContextAdapter(requests.adapters.HTTPAdapter):
    """HTTPS through one SSL context, which holds the node's CA and client certificate."""

    def __init__(self, context: ssl.SSLContext, pool_size: int) -> None:
        self.context = context
        super().__init__(pool_maxsize=pool_size)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, ssl_context=self.context, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        # Always verify, against the context's CA alone: requests would add its own bundle.
        conn.cert_reqs, conn.ca_certs, conn.ca_cert_dir = "CERT_REQUIRED", None, None


def _pem_file(pem: str) -> int:
    """An anonymous in-memory file holding pem, for the moment ssl reads it: ssl loads a
    client certificate only from a path, and key material must never rest in a file."""
    fd = os.memfd_create("fleet-tls", os.MFD_CLOEXEC)
    os.write(fd, pem.encode())
    return fd


def tls_context(node: EngineNode) -> ssl.SSLContext:
    """The node's SSL context: its engine verified against the node's CA (never without one),
    Fleet's client certificate loaded once, so every new connection uses it as it is."""
    if not node.tls_ca:
        raise EngineError("TLS without the engine's CA certificate is refused: set tls_ca")
    if node.tls_key and "-----BEGIN" not in node.tls_key:
        raise EngineError(
            "the node's TLS key cannot be opened with the current FLEET_SECRETS_KEY "
            "(or SECRET_KEY); set the key again"
        )
    fds = []
    try:
        context = ssl.create_default_context(cadata=node.tls_ca)
        if node.tls_cert:
            fds.append(_pem_file(node.tls_cert))
            fds.append(_pem_file(node.tls_key))
            context.load_cert_chain(*(f"/proc/self/fd/{fd}" for fd in fds))
    except (ssl.SSLError, ValueError) as exc:
        raise EngineError(f"unusable TLS material: {exc}") from exc
    finally:
        for fd in fds:
            os.close(fd)
    return context
