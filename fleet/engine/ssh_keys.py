"""SSH keys as a node keeps them: the private key Fleet logs in with, and its host's public key.

Part of the Docker seam (fleet.engine.ssh connects with them); no connection is made
here, so validation and the unit tests use it as it is. Fingerprints are written as
OpenSSH writes them (`ssh-keygen -l`): "SHA256:" and the unpadded base64 of the
SHA-256 of the key's wire form.
"""

import base64
import binascii
import hashlib
import io
import struct
from dataclasses import dataclass
from typing import Any

import paramiko
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

# The host key algorithms a pinned key of each type is asked for: an RSA key signs with
# SHA-2 (OpenSSH refuses ssh-rsa's SHA-1 signatures since 8.8).
HOST_KEY_ALGORITHMS = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
}
LONGEST_HOST_KEY = 4096  # characters: an RSA key of 16384 bits is under 2,800
_CLASSES = (
    (ed25519.Ed25519PrivateKey, paramiko.Ed25519Key),
    (rsa.RSAPrivateKey, paramiko.RSAKey),
    (ec.EllipticCurvePrivateKey, paramiko.ECDSAKey),
)
_OPENSSH = (
    serialization.Encoding.PEM,
    serialization.PrivateFormat.OpenSSH,
    serialization.NoEncryption(),
)


@dataclass(frozen=True)
class HostKey:
    """A host's public key: its type ("ssh-ed25519") and its wire form."""

    type: str
    blob: bytes

    @property
    def line(self) -> str:
        """As an authorized_keys or known_hosts file writes it: "ssh-ed25519 AAAA..."."""
        return f"{self.type} {base64.b64encode(self.blob).decode()}"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)

    def __str__(self) -> str:
        return f"{self.fingerprint} ({self.type})"


def fingerprint(blob: bytes) -> str:
    """The SHA256 fingerprint of a public key's wire form, as OpenSSH shows it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def private_key(text: str) -> paramiko.PKey:
    """The private key in `text` (OpenSSH or PEM; Ed25519, RSA or ECDSA; unencrypted),
    ready to log in with; ValueError saying why not."""
    data = text.strip().encode()
    if not data.startswith(b"-----BEGIN "):
        raise ValueError("Paste the private key's text, starting with -----BEGIN.")
    loaded: Any
    try:
        try:
            loaded = serialization.load_ssh_private_key(data, password=None)
        except ValueError:
            loaded = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ValueError(
            "The key is encrypted with a passphrase: give it without one "
            "(ssh-keygen -p -N '' -f KEY), Fleet seals it at rest."
        ) from None
    except (ValueError, UnsupportedAlgorithm, struct.error) as exc:
        raise ValueError("Not an OpenSSH or PEM private key that can be read.") from exc
    for kind, key_class in _CLASSES:
        if isinstance(loaded, kind):
            # paramiko reads every type from OpenSSH's own format, whatever it came in.
            readable = loaded.private_bytes(*_OPENSSH).decode()
            try:
                return key_class.from_private_key(io.StringIO(readable))
            except (paramiko.SSHException, ValueError) as exc:
                raise ValueError(f"The key cannot be used for SSH: {exc}") from exc
    raise ValueError("Only Ed25519, RSA and ECDSA keys log in over SSH.")


def public_line(key: paramiko.PKey) -> str:
    """A key's public half as an authorized_keys line would hold it."""
    return HostKey(key.get_name(), key.asbytes()).line


def host_key(text: str) -> HostKey:
    """A host's public key from one line: "TYPE BASE64 [comment]", or a known_hosts or
    ssh-keyscan line with the host name first; ValueError saying why not."""
    if len(text) > LONGEST_HOST_KEY:
        raise ValueError(f"A host key line is at most {LONGEST_HOST_KEY} characters.")
    if len(text.strip().splitlines()) > 1:
        raise ValueError("Give one host key, on one line.")
    fields = text.split()
    if len(fields) >= 3 and fields[0] not in HOST_KEY_ALGORITHMS:
        fields = fields[1:]  # "host TYPE BASE64", as ssh-keyscan prints it
    if len(fields) < 2 or fields[0] not in HOST_KEY_ALGORITHMS:
        raise ValueError(
            "Give the host's public key as one line, TYPE BASE64 (ssh-keyscan HOST prints "
            f"it; /etc/ssh/ssh_host_ed25519_key.pub holds it); TYPE is one of "
            f"{', '.join(HOST_KEY_ALGORITHMS)}."
        )
    kind, encoded = fields[0], fields[1]
    try:
        blob = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError("The host key's base64 cannot be read.") from None
    named = kind.encode()
    if blob[:4] != struct.pack(">I", len(named)) or blob[4 : 4 + len(named)] != named:
        raise ValueError(f"The host key's base64 does not hold a key of type {kind}.")
    try:
        read = paramiko.PKey.from_type_string(kind, blob).asbytes()
    # A hostile line reaches paramiko's parser: whatever it raises, the line is refused.
    except (paramiko.SSHException, ValueError, TypeError, struct.error, OverflowError) as exc:
        raise ValueError(f"The host key cannot be read: {exc or type(exc).__name__}.") from exc
    if read != blob:
        raise ValueError("The host key is cut short or garbled.")
    return HostKey(kind, blob)
