"""App config for the fleet domain."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class FleetConfig(AppConfig):
    name = "fleet"
    verbose_name = "Fleet"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from fleet.access.roles import sync_groups

        # After every migrate, once all apps' permissions exist, keep the role groups exact.
        post_migrate.connect(sync_groups, dispatch_uid="fleet.access.roles.sync_groups")
