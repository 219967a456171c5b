"""`manage.py watch`: follow every node's Docker events stream (the Procfile's watch process)."""

import signal
import threading

from django.core.management.base import BaseCommand

from fleet.nodes import watch


class Command(BaseCommand):
    help = "Follow the Docker events of every node and keep observed state current."

    def add_arguments(self, parser):
        parser.add_argument(
            "--rescan", type=float, default=2.0, help="seconds between looks for new nodes"
        )

    def handle(self, *args, rescan, **options):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write("Watching node events. Ctrl-C stops.")
        watch.run(rescan=rescan, stop=stop)
