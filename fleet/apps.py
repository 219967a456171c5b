"""App config for the fleet domain."""

import os

from django.apps import AppConfig
from django.conf import settings
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def private_var_dir():
    """var/ holds the secret key, the admin's first password, the Redis password and the
    SQLite database (sessions among them): its owner's alone."""
    var = settings.VAR_DIR
    var.mkdir(mode=0o700, exist_ok=True)
    if var.stat().st_mode & 0o077:
        var.chmod(0o700)


_private_databases: set[str] = set()  # checked in this process already


def private_sqlite(sender, connection, **kwargs):
    """A SQLite database, and its write-ahead log, readable and writable by its owner alone
    (SQLite makes its -wal and -shm files with the database's own mode, so once per
    process is enough, not once per connection)."""
    if connection.vendor != "sqlite":
        return
    name = str(connection.settings_dict["NAME"])
    if name.startswith("file:") or name == ":memory:" or name in _private_databases:
        return
    _private_databases.add(name)
    for path in (name, f"{name}-wal", f"{name}-shm"):
        try:
            if os.stat(path).st_mode & 0o077:
                os.chmod(path, 0o600)
        except FileNotFoundError:
            pass


class FleetConfig(AppConfig):
    name = "fleet"
    verbose_name = "Fleet"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from fleet.access.roles import sync_groups

        # After every migrate, once all apps' permissions exist, keep the role groups exact.
        post_migrate.connect(sync_groups, dispatch_uid="fleet.access.roles.sync_groups")
        private_var_dir()
        connection_created.connect(private_sqlite, dispatch_uid="fleet.apps.private_sqlite")
