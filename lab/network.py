"""A lab node's network: its namespace, and a veth pair from it to the lab's bridge.

Standard library only; it runs ip. Every step copes with what an earlier or crashed run
left behind.
"""

from pathlib import Path
from types import SimpleNamespace

from lab.host import run


def setup_node_net(n: SimpleNamespace, bridge: str, prefix: str, gateway: str) -> None:
    """Node n's namespace with eth0 on the bridge, its address (with `prefix`, "/24") and
    a default route through the gateway."""
    # A netns file that is not a mount of its own (e.g. after a reboot) is stale.
    if not n.netns.exists() or n.netns.stat().st_dev == n.netns.parent.stat().st_dev:
        run("ip", "netns", "del", n.ns, check=False)
        n.netns.unlink(missing_ok=True)
        run("ip", "netns", "add", n.ns)
    has_peer = run("ip", "-n", n.ns, "link", "show", "eth0", check=False).returncode == 0
    has_host = Path(f"/sys/class/net/{n.veth}").exists()
    if not (has_peer and has_host):  # half a pair: start over
        run("ip", "link", "del", n.veth, check=False)
        run("ip", "-n", n.ns, "link", "del", "eth0", check=False)
        run("ip", "link", "add", n.veth, "type", "veth", "peer", "name", "eth0", "netns", n.ns)
    run("ip", "link", "set", n.veth, "master", bridge, "up")
    run("ip", "-n", n.ns, "addr", "replace", f"{n.addr}{prefix}", "dev", "eth0")
    run("ip", "-n", n.ns, "link", "set", "eth0", "up")
    run("ip", "-n", n.ns, "link", "set", "lo", "up")
    run("ip", "-n", n.ns, "route", "replace", "default", "via", gateway)
