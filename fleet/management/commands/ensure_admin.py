"""`manage.py ensure_admin`: make sure the admin user exists and say how to log in."""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

PASSWORD_FILE = settings.VAR_DIR / "admin-password"


def _generated_password():
    """The password kept in var/ (git-ignored), made once."""
    if PASSWORD_FILE.exists():
        return PASSWORD_FILE.read_text().strip()
    password = secrets.token_urlsafe(12)
    PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


class Command(BaseCommand):
    help = "Create the admin user from FLEET_ADMIN_USER and FLEET_ADMIN_PASSWORD."

    def handle(self, *args, **options):
        username = os.environ.get("FLEET_ADMIN_USER", "admin").strip()
        password = os.environ.get("FLEET_ADMIN_PASSWORD", "")
        if not username:
            raise CommandError("FLEET_ADMIN_USER may not be empty.")
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if password:
            # The environment is the source of truth: set it, even on an existing user.
            if user is None:
                User.objects.create_superuser(username=username, password=password)
            elif not user.check_password(password):
                user.set_password(password)
                user.save(update_fields=["password"])
            self.stdout.write(f"Log in as {username!r} with the password in FLEET_ADMIN_PASSWORD.")
            return
        generated = _generated_password()
        if user is None:
            User.objects.create_superuser(username=username, password=generated)
        shown = PASSWORD_FILE.relative_to(settings.BASE_DIR)
        if user is not None and not user.check_password(generated):
            self.stdout.write(f"User {username!r} exists; its password was changed since {shown}.")
            return
        self.stdout.write(f"Log in as {username!r} with password {generated} (kept in {shown}).")
