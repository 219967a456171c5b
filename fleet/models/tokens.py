"""API tokens: stored as hashes (django-rest-knox), named, optionally expiring."""

import uuid

from django.db import models
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS


class ApiToken(AbstractAuthToken):
    """A user's API token: only its hash is kept, so nobody, an admin included, can read it
    back; it is shown once, when it is made. Its owner lists and revokes it by its id."""

    # Knox keys tokens by their digest; an id of their own keeps even the hash out of URLs,
    # lists and the admin.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    digest = models.CharField(max_length=CONSTANTS.DIGEST_LENGTH, unique=True)
    name = models.CharField(max_length=64)

    class Meta:
        ordering = ["-created"]
        verbose_name = "API token"

    def __str__(self):
        return f"{self.name} ({self.user})"
