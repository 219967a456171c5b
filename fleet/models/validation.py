"""Pure validators for names, endpoints and labels, shared by models, forms and the API."""

import ipaddress
import re
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ValidationError

from fleet.access.sealing import PREFIX as SEALED
from fleet.engine import ssh_keys

# A node or service name, also what one can look like in a URL: anything else is a 404 at
# once, before it reaches a database that may refuse it (PostgreSQL refuses NUL in text).
NAME_IN_URL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DNS_LABEL = re.compile(rf"^{NAME_IN_URL}$")
LABEL_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$")
_HOST_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_HOST_LABEL}(\.{_HOST_LABEL})*$")
ENDPOINT_SCHEMES = ("unix", "tcp", "ssh")
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def validate_dns_label(value):
    """A name usable as a DNS label: lowercase letters, digits and inner hyphens, 1-63 long."""
    if not DNS_LABEL.fullmatch(value or ""):
        raise ValidationError(
            "Use 1-63 lowercase letters, digits or hyphens, starting and ending "
            "with a letter or digit.",
            code="invalid_name",
        )


def _validate_host(host):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not HOSTNAME.fullmatch(host):
            raise ValidationError(
                f"'{host}' is not a valid host name or address.", code="invalid"
            ) from None


def validate_endpoint(value):
    """A Docker endpoint: unix:///path, tcp://host:port or ssh://[user@]host[:port]."""
    # urlsplit quietly drops tabs and newlines, so the stored text would differ from what
    # was checked.
    if any(char.isspace() or not char.isprintable() for char in value or ""):
        raise ValidationError(
            "The endpoint may not contain spaces or control characters.", code="invalid"
        )
    try:
        parts = urlsplit(value or "")
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"Malformed endpoint: {exc}.", code="invalid") from exc
    if parts.scheme not in ENDPOINT_SCHEMES:
        raise ValidationError(
            "The endpoint must start with unix://, tcp:// or ssh://.", code="invalid_scheme"
        )
    if parts.query or parts.fragment:
        raise ValidationError("The endpoint may not have a query or fragment.", code="invalid")
    if parts.scheme == "unix":
        if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
            raise ValidationError(
                "A unix endpoint needs an absolute socket path: unix:///var/run/docker.sock.",
                code="invalid",
            )
        return
    if not parts.hostname:
        raise ValidationError(f"A {parts.scheme} endpoint needs a host.", code="invalid")
    if parts.path not in ("", "/"):
        raise ValidationError("The endpoint may not have a path.", code="invalid")
    _validate_host(parts.hostname)
    if parts.scheme == "tcp":
        if port is None:
            raise ValidationError(
                "A tcp endpoint needs a port: tcp://HOST:2375 (or 2376 with TLS).",
                code="invalid",
            )
        if parts.username or parts.password:
            raise ValidationError("A tcp endpoint may not carry a user name.", code="invalid")
    if port is not None and not 0 < port < 65536:
        raise ValidationError("The port must be between 1 and 65535.", code="invalid")


def validate_labels(value):
    """Node labels: a flat object of string keys to string values."""
    if not isinstance(value, dict):
        raise ValidationError('Labels must be an object such as {"zone": "a"}.', code="invalid")
    for key, val in value.items():
        if not isinstance(key, str) or not LABEL_KEY.fullmatch(key):
            raise ValidationError(
                f"Label key {key!r} must be 1-128 letters, digits, '.', '_', '/' or '-'.",
                code="invalid",
            )
        if not isinstance(val, str) or len(val) > 256 or "\x00" in val:
            raise ValidationError(
                f"Label {key!r} must have a string value of at most 256 characters "
                "(and no NUL characters).",
                code="invalid",
            )


def validate_pem(value):
    """A PEM block, as a TLS certificate or key is given."""
    if value and "-----BEGIN " not in value:
        raise ValidationError("Paste the PEM text, starting with -----BEGIN.", code="invalid")


def _certificates(value):
    try:
        return x509.load_pem_x509_certificates(value.encode())
    except ValueError as exc:
        raise ValidationError(
            "Not a PEM certificate (-----BEGIN CERTIFICATE-----) that can be read.",
            code="invalid",
        ) from exc


def validate_certificate(value):
    """One or more PEM X.509 certificates (a CA bundle, or a certificate and its chain)."""
    if value:
        validate_pem(value)
        _certificates(value)


def validate_private_key(value):
    """An unencrypted PEM private key."""
    if not value:
        return
    if value.startswith(SEALED):  # stored under a key that is no longer the current one
        raise ValidationError(
            "The stored TLS key cannot be opened with the current FLEET_SECRETS_KEY "
            "(or SECRET_KEY); send the key again.",
            code="unreadable",
        )
    validate_pem(value)
    try:
        serialization.load_pem_private_key(value.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            "Not an unencrypted PEM private key that can be read.", code="invalid"
        ) from exc


def validate_key_pair(cert, key):
    """The client certificate (the first of its chain) and the key are one pair."""
    try:
        public = _certificates(cert)[0].public_key().public_bytes(*_SPKI)
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except (ValidationError, ValueError, TypeError):
        return  # each is reported on its own field
    if private.public_key().public_bytes(*_SPKI) != public:
        raise ValidationError(
            "The TLS client key does not belong to the client certificate.", code="mismatch"
        )


def validate_ssh_key(value):
    """An unencrypted private key that logs in over SSH: OpenSSH or PEM, Ed25519, RSA or ECDSA."""
    if not value:
        return
    if value.startswith(SEALED):  # stored under a key that is no longer the current one
        raise ValidationError(
            "The stored SSH key cannot be opened with the current FLEET_SECRETS_KEY "
            "(or SECRET_KEY); send the key again.",
            code="unreadable",
        )
    try:
        ssh_keys.private_key(value)
    except ValueError as exc:
        raise ValidationError(str(exc), code="invalid") from exc


def validate_ssh_host_key(value):
    """A host's public key, one line: "ssh-ed25519 AAAA..." (a known_hosts line will do)."""
    if not value:
        return
    try:
        ssh_keys.host_key(value)
    except ValueError as exc:
        raise ValidationError(str(exc), code="invalid") from exc
