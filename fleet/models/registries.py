"""Registry credentials: what every pull of an image from a private registry logs in with."""

from django.db import models

from fleet.access.sealing import SealedTextField


class Registry(models.Model):
    """A registry's login, by its server as image references name it (host[:port])."""

    server = models.CharField(
        max_length=255,
        unique=True,
        help_text="As image references name it: registry.example.com, host:5000, docker.io.",
    )
    username = models.CharField(max_length=255)
    # A password or an access token: sealed in the database, never shown again.
    password = SealedTextField("password or token")
    # A CA's certificates (PEM) for a registry on a private CA: public, so not sealed. Every
    # node's engine is made to trust it for this server before it pulls from it.
    ca = models.TextField("CA certificate", blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["server"]
        verbose_name_plural = "registries"

    def __str__(self):
        return self.server
