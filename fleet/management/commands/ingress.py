"""`manage.py ingress start|stop|sync`: run Fleet's HAProxy and bring it in line."""

from django.core.management.base import BaseCommand, CommandError

from fleet.ingress import process, sync


class Command(BaseCommand):
    help = "Start or stop the ingress proxy (HAProxy), or sync it with the database."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop", "sync"])

    def handle(self, *args, action, **options):
        try:
            if action == "start":
                # Printed only when started, so that `make run` knows what to stop.
                if process.start():
                    self.stdout.write("haproxy")
                sync.sync_all()
            elif action == "stop":
                process.stop()
            else:
                sync.sync_all()
        except (OSError, RuntimeError) as exc:
            raise CommandError(f"ingress {action}: {exc}") from exc
