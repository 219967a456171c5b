"""App config for the browser dashboard."""

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth.signals import user_logged_out

        from dashboard import fragments

        # fleet.live sends what changed; how each kind looks is the dashboard's to say.
        fragments.register()
        # Every door out (the pages' logout, the admin's) ends in Django's logout(), whose
        # signal is the one place that sees them all: the user's open sockets check their
        # logins at once, and the one that was this session's closes.
        user_logged_out.connect(_logged_out, dispatch_uid="fleet-sockets-on-logout")


def _logged_out(sender, request, user, **kwargs):
    from fleet import live

    if user is not None:
        live.login_changed(user.pk)
