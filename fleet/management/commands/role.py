"""`manage.py role <user> [viewer|operator|admin|none]`: show or set a user's role."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from fleet.access import roles
from fleet.models import Actor

CHOICES = [*roles.ROLES, "none"]


class Command(BaseCommand):
    help = "Show a user's role, or give the user one: viewer, operator, admin or none."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", nargs="?", choices=CHOICES)

    def handle(self, *args, username, role, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if role is not None:
            try:
                roles.assign(user, None if role == "none" else role, Actor("manage.py", "cli"))
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(f"{username}: {roles.role_of(user) or 'no role'}")
