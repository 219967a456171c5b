"""Secret values at rest: sealed with Fernet (AES-128-CBC and HMAC-SHA256), opened only
to start a container (services' secrets) or to reach an engine (nodes' TLS keys).

The key comes from FLEET_SECRETS_KEY, or is derived from SECRET_KEY when that is
unset; changing the key that sealed a value makes it unreadable, which `open_value`
reports as SealError rather than passing garbage to a container.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models

PREFIX = "sealed:v1:"
MASK = "********"


class SealError(Exception):
    """A sealed value that this key cannot open."""


def _fernet():
    material = settings.FLEET_SECRETS_KEY or settings.SECRET_KEY
    digest = hashlib.sha256(b"fleet-secrets:" + material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(value: str) -> str:
    return PREFIX + _fernet().encrypt(value.encode()).decode()


def is_sealed(value) -> bool:
    """Whether this is a value this key sealed (so it is kept as it is, not sealed again)."""
    if not (isinstance(value, str) and value.startswith(PREFIX)):
        return False
    try:
        open_value(value)
    except SealError:
        return False
    return True


def open_value(sealed: str) -> str:
    try:
        return _fernet().decrypt(sealed.removeprefix(PREFIX).encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise SealError(
            "A secret cannot be opened with the current key (FLEET_SECRETS_KEY or SECRET_KEY "
            "changed since it was stored); deploy it again with its value."
        ) from exc


def open_all(sealed: dict) -> dict:
    return {name: open_value(value) for name, value in sealed.items()}


def masked(values: dict) -> dict:
    """What anyone is shown of secret values: their names."""
    return dict.fromkeys(values, MASK)


class SealedTextField(models.TextField):
    """Text that is sealed in the database and open in memory (a node's TLS key).

    A stored value this key cannot open is left sealed in memory: saved back unchanged,
    and refused by validation and by the engine with a message that says why.
    """

    def from_db_value(self, value, expression, connection):
        if not value or not value.startswith(PREFIX):
            return value
        try:
            return open_value(value)
        except SealError:
            return value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value or value.startswith(PREFIX):
            return value
        return seal(value)
