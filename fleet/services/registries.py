"""Registry credentials through every door (checked, sealed, audited), and the login a pull uses.

A pull logs in to the registry its image names (fleet.engine.errors.registry_of: `redis`
and `library/redis` are Docker Hub's, `host:5000/a/b` is host:5000's) with the credentials
kept for that server here, else with FLEET_REGISTRY_AUTH's. The engine does the pull, so
it is the engine that must trust a registry's certificate (its host's
/etc/docker/certs.d/<server>/ca.crt), as for `docker pull`. The audit Event names the
server and the user, never the password. Credentials added or changed apply from the next
pull, and the replicas whose pull from that server failed are tried again at once.
"""

import re
from collections.abc import Callable
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from fleet import queue
from fleet.engine import trust
from fleet.engine.errors import HUB_NAMES, PULL_UNTRUSTED, PullError, registry_of
from fleet.engine.node import EngineNode
from fleet.models import Actor, Event, EventKind, Registry, Replica, Service

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
SERVER = re.compile(rf"(?P<host>{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>[0-9]{{1,5}}))?")
SERVER_FORMS = "a host or host:port as image references name it, such as ghcr.io or 10.0.0.5:5000"


def clean_server(text: object) -> str:
    """The server to key credentials by (Docker Hub's other names are docker.io), or a
    ValidationError that says what to give instead."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"Give the registry's server: {SERVER_FORMS}.")
    value = text.strip().lower()
    if "://" in value or "/" in value:
        raise ValidationError(
            f"{text[:100]!r} is a URL: give {SERVER_FORMS}, without scheme or path."
        )
    found = SERVER.fullmatch(value)
    if found is None or len(value) > 255:
        raise ValidationError(f"{text[:100]!r} is not a registry server: give {SERVER_FORMS}.")
    if found["port"] and not 1 <= int(found["port"]) <= 65535:
        raise ValidationError(f"{text[:100]!r} has no port {found['port']}: ports are 1 to 65535.")
    server = registry_of(f"{value}/image")
    if server == "docker.io" and value not in HUB_NAMES:
        raise ValidationError(
            f"Docker reads {value!r} as a Docker Hub account, not a registry: a registry's "
            "host has a dot or a port (or is localhost)."
        )
    return server


def clean_new_server(text: object, row: Registry | None = None) -> str:
    """clean_server, and refused when another registry's credentials are kept for it."""
    server = clean_server(text)
    taken = Registry.objects.filter(server=server)
    if row is not None:
        taken = taken.exclude(pk=row.pk)
    if taken.exists():
        raise ValidationError(f"Credentials for {server} are kept already.")
    return server


def clean_secret(text: object, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"Give the {what}.")
    if len(text) > 4096 or any(c in text for c in "\r\n\0"):
        raise ValidationError(f"The {what} must be one line of at most 4,096 characters.")
    return text


CA_LIMIT = 64 * 1024
T = TypeVar("T")


def clean_ca(text: object) -> str:
    """PEM certificates (one CA, or a chain) as they will be written, "" for none; a
    ValidationError that says what is wrong otherwise."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return ""
    if not isinstance(text, str) or len(text) > CA_LIMIT:
        raise ValidationError("Give the CA as PEM text of at most 64 KiB, or nothing.")
    try:
        certificates = x509.load_pem_x509_certificates(text.strip().encode())
    except ValueError:
        raise ValidationError(
            "The CA is not PEM certificates: give the text from -----BEGIN CERTIFICATE----- "
            "to -----END CERTIFICATE-----."
        ) from None
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def ca_summary(pem: str) -> str:
    """Whom the CA's first certificate names and its SHA-256 fingerprint, for people."""
    if not pem:
        return ""
    first = x509.load_pem_x509_certificates(pem.encode())[0]
    digest = first.fingerprint(hashes.SHA256()).hex()
    return f"{first.subject.rfc4514_string()} (SHA-256 {digest[:16]}…)"


def trust_for(image: str) -> tuple[str, str] | None:
    """(server, CA) when the registry `image` names has a CA kept, else None."""
    server = registry_of(image)
    ca = Registry.objects.filter(server=server).values_list("ca", flat=True).first()
    return (server, ca) if ca else None


def trusting(node: EngineNode, image: str, call: Callable[[], T]) -> T:
    """call() (that may pull `image` on the node) once the node's engine trusts the
    registry's kept CA, if any; if the pull is refused for the certificate all the same
    (the file was taken away on the host), the CA is written again and call() tried once
    more. EngineError if the CA cannot be written."""
    trusted = trust_for(image)
    if trusted is None:
        return call()
    trust.ensure_ca(node, *trusted)
    try:
        return call()
    except PullError as exc:
        if exc.reason != PULL_UNTRUSTED:
            raise
    trust.ensure_ca(node, *trusted)  # the failure made it forget this node has it
    return call()


def auth_for(image: str) -> dict[str, str] | None:
    """The login a pull of `image` sends: its registry's kept credentials, else
    FLEET_REGISTRY_AUTH's for that server, else none."""
    server = registry_of(image)
    row = Registry.objects.filter(server=server).only("username", "password").first()
    if row is not None:
        return {"username": row.username, "password": row.password}
    # settings.py refuses a FLEET_REGISTRY_AUTH that is not a dict (of dicts).
    return settings.FLEET_REGISTRY_AUTH.get(server)  # type: ignore[union-attr]


def _what(row: Registry) -> str:
    return f"registry {row.server}, user {row.username}"


def retry_pulls(server: str) -> list[str]:
    """Try again now the replicas whose image of `server` could not be pulled, rather than
    after their backoff (up to a minute): new credentials may be what they lacked. Returns
    the names of the services woken."""
    failed = Replica.objects.filter(
        state=Replica.State.FAILED, error__startswith="cannot pull ", service__deleting=False
    ).select_related("deployment", "service")
    rows = [r for r in failed if registry_of(r.deployment.spec.get("image", "")) == server]
    if not rows:
        return []
    Replica.objects.filter(pk__in=[r.pk for r in rows]).update(retry_at=timezone.now())
    services = {r.service for r in rows}
    # A converge that holds a service's lease now must look again before it calls itself done.
    Service.objects.filter(pk__in=[s.pk for s in services]).update(generation=F("generation") + 1)
    for service in services:
        queue.converge(service.pk)
    return sorted(s.name for s in services)


@transaction.atomic
def add(row: Registry, actor: Actor) -> Registry:
    row.save()
    Event.objects.record(EventKind.REGISTRY_ADDED, actor=actor, reason=_what(row))
    retry_pulls(row.server)
    return row


@transaction.atomic
def change(row: Registry, changes: dict[str, Any], actor: Actor) -> Registry:
    """Apply checked changes; a password in `changes` replaces the kept one from the next pull."""
    replaced = "password" in changes
    for field, value in changes.items():
        setattr(row, field, value)
    row.save()
    note = " (password replaced)" if replaced else ""
    Event.objects.record(EventKind.REGISTRY_CHANGED, actor=actor, reason=_what(row) + note)
    retry_pulls(row.server)
    return row


@transaction.atomic
def remove(row: Registry, actor: Actor) -> None:
    what = _what(row)
    row.delete()
    Event.objects.record(EventKind.REGISTRY_REMOVED, actor=actor, reason=what)
