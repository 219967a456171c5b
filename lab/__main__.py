"""`python -m lab up|stop|down|status`: a local lab of real Docker engines, as Fleet's nodes.

A development tool beside the product: it registers its engines through Fleet's own node
actions, as an admin would, and nothing of Fleet imports it.
"""

import argparse
import json
import os
import sys

from lab import Lab, LabError, node_fields
from lab.engines import DEFAULT_MIX, HOST, KINDS


def parse(argv):
    parser = argparse.ArgumentParser(
        prog="python -m lab",
        description="Run a local lab of Docker engines (one per network namespace) with a "
        "registry, registered as Fleet's nodes.",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    up = sub.add_parser("up", help="start (or repair) the lab and register its nodes")
    up.add_argument("--nodes", type=int, default=3, help="how many engines (default 3)")
    up.add_argument(
        "--engine",
        action="append",
        default=[],
        type=engine_choice,
        metavar="NODE=KIND",
        help=f"run another engine on a node, e.g. lab-3=28 (kinds: {', '.join(KINDS)}; "
        f"the nodes not named run {HOST!r}, the host's dockerd); may be repeated. Without "
        f"it, FLEET_LAB_ENGINES says (comma-separated, {DEFAULT_MIX!r} when unset)",
    )
    up.add_argument(
        "--ssh",
        action="append",
        default=None,
        metavar="NODE",
        help="reach this node over SSH alone (its own sshd, no TCP port for its engine), "
        "e.g. lab-4; may be repeated. Without it, FLEET_LAB_SSH says (comma-separated)",
    )
    sub.add_parser("stop", help="stop the engines and the registry, keep their data")
    sub.add_parser("down", help="remove everything the lab made, and its nodes")
    status = sub.add_parser("status", help="show the registries, images and engines")
    status.add_argument("--json", action="store_true", help="print JSON")
    return parser.parse_args(argv)


def engine_choice(text):
    node, _, kind = text.partition("=")
    if not node or kind not in KINDS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NODE=KIND, KIND one of {', '.join(KINDS)}"
        )
    return node, kind


def main(argv=None):
    args = parse(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleet.settings")
    import django

    django.setup()
    lab = Lab.from_env()
    try:
        if args.action == "up":
            up(lab, args.nodes, dict(args.engine) or None, args.ssh)
        elif args.action == "stop":
            lab.stop()
            print("Lab stopped; `lab up` starts it again with the same data.")
        elif args.action == "down":
            down(lab)
        else:
            status(lab, args.json)
    except LabError as exc:
        sys.exit(f"lab: {exc}")


def up(lab, count, engines, ssh):
    from fleet import nodes
    from fleet.models import Node

    state = lab.up(count, engines, ssh)
    for entry in state["nodes"]:
        register(entry)
    # Nodes of an earlier, bigger lab are gone with their engines.
    current = {entry["name"] for entry in state["nodes"]}
    for node in Node.objects.filter(name__regex=r"^lab-[0-9]+$").exclude(name__in=current):
        nodes.remove(node, reason="the lab no longer has this engine")
    private = state["private_registry"]
    print(f"Lab up: {len(state['nodes'])} node(s), registry {state['registry']}.")
    print(f"  private registry {private['address']} (user {private['username']}: lab status)")
    for ref in state["images"].values():
        print(f"  image {ref}")


def register(entry):
    from fleet import nodes
    from fleet.models import Node

    wanted = node_fields(entry)
    node = Node.objects.filter(name=entry["name"]).first()
    if node is None:
        nodes.register(Node(name=entry["name"], **wanted))
    elif any(getattr(node, field) != value for field, value in wanted.items()):
        nodes.update(node, wanted)
    else:
        nodes.request_check([node])


def down(lab):
    from fleet import nodes
    from fleet.models import Node

    names = lab.node_names()
    lab.down()
    for node in Node.objects.filter(name__in=names):
        nodes.remove(node, reason="lab down")
    print("Lab removed.")


def status(lab, as_json):
    state = lab.status()
    if as_json:
        public = {
            "registry": state["registry"],
            "private_registry": state["private_registry"],
            "images": state["images"],
            "nodes": [
                {k: n[k] for k in ("name", "endpoint", "tls", "ssh", "engine", "pid")}
                for n in state["nodes"]
            ],
        }
        print(json.dumps(public, indent=2))
        return
    print(f"registry {state['registry']}")
    private = state["private_registry"]
    print(
        f"private registry {private['address']}  user {private['username']}  "
        f"password {private['password']}  ca {private['ca']}"
    )
    for key, ref in state["images"].items():
        print(f"{key}: {ref}")
    for node in state["nodes"]:
        alive = f"pid {node['pid']}" if node["pid"] else "not running"
        print(f"{node['name']}  {node['endpoint']}  engine {node['engine']}  {alive}")
        if node["ssh"]:
            sshd = f"pid {node['ssh']['pid']}" if node["ssh"]["pid"] else "not running"
            print(f"  ssh key {node['ssh']['key']}  sshd {sshd}")
            print(f"  host key {node['ssh']['host_key']}")


if __name__ == "__main__":
    main()
