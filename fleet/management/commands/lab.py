"""`manage.py lab up|stop|down|status`: a local lab of real Docker engines, as nodes."""

import json

from django.core.management.base import BaseCommand, CommandError

from fleet import nodes
from fleet.lab import Lab, LabError, node_tls
from fleet.models import Node


class Command(BaseCommand):
    help = "Run a local lab of Docker engines (one per network namespace) with a registry."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        up = sub.add_parser("up", help="start (or repair) the lab and register its nodes")
        up.add_argument("--nodes", type=int, default=3, help="how many engines (default 3)")
        sub.add_parser("stop", help="stop the engines and the registry, keep their data")
        sub.add_parser("down", help="remove everything the lab made, and its nodes")
        status = sub.add_parser("status", help="show the registry, images and engines")
        status.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, action, **options):
        lab = Lab.from_env()
        try:
            if action == "up":
                self.up(lab, options["nodes"])
            elif action == "stop":
                lab.stop()
                self.stdout.write("Lab stopped; `lab up` starts it again with the same data.")
            elif action == "down":
                names = lab.node_names()
                lab.down()
                for node in Node.objects.filter(name__in=names):
                    nodes.remove(node, reason="lab down")
                self.stdout.write("Lab removed.")
            else:
                self.status(lab, options["json"])
        except LabError as exc:
            raise CommandError(str(exc)) from exc

    def up(self, lab, count):
        state = lab.up(count)
        for entry in state["nodes"]:
            self.register(entry)
        # Nodes of an earlier, bigger lab are gone with their engines.
        current = {entry["name"] for entry in state["nodes"]}
        for node in Node.objects.filter(name__regex=r"^lab-[0-9]+$").exclude(name__in=current):
            nodes.remove(node, reason="the lab no longer has this engine")
        self.stdout.write(f"Lab up: {len(state['nodes'])} node(s), registry {state['registry']}.")
        for ref in state["images"].values():
            self.stdout.write(f"  image {ref}")

    def register(self, entry):
        wanted = {"endpoint": entry["endpoint"], **node_tls(entry["tls"])}
        node = Node.objects.filter(name=entry["name"]).first()
        if node is None:
            nodes.register(Node(name=entry["name"], **wanted))
        elif any(getattr(node, field) != value for field, value in wanted.items()):
            nodes.update(node, wanted)
        else:
            nodes.request_check([node])

    def status(self, lab, as_json):
        state = lab.status()
        if as_json:
            public = {
                "registry": state["registry"],
                "images": state["images"],
                "nodes": [
                    {k: n[k] for k in ("name", "endpoint", "tls", "pid")} for n in state["nodes"]
                ],
            }
            self.stdout.write(json.dumps(public, indent=2))
            return
        self.stdout.write(f"registry {state['registry']}")
        for key, ref in state["images"].items():
            self.stdout.write(f"{key}: {ref}")
        for node in state["nodes"]:
            alive = f"pid {node['pid']}" if node["pid"] else "not running"
            self.stdout.write(f"{node['name']}  {node['endpoint']}  {alive}")
