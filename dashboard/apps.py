"""App config for the browser dashboard."""

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import fragments

        # fleet.live sends what changed; how each kind looks is the dashboard's to say.
        fragments.register()
