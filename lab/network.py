"""The lab's network: its bridge, and per node a namespace with a veth pair to the bridge.

Standard library only; it runs ip and iptables. Every step copes with what an earlier or crashed run
left behind.
"""

import ipaddress
from pathlib import Path
from types import SimpleNamespace

from lab.host import run


def mac_of(address: str) -> str:
    """A fixed MAC (locally administered) for an address of the lab: a node or bridge made again
    keeps it, so no neighbour cache (the host's, the nodes') holds a MAC that went away. With a
    new one each time, the host reached a node made again only once its cached entry failed,
    15 s on."""
    return "02:00:" + ":".join(f"{byte:02x}" for byte in ipaddress.IPv4Address(address).packed)


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
    run("ip", "-n", n.ns, "link", "set", "eth0", "address", mac_of(n.addr))
    run("ip", "-n", n.ns, "addr", "replace", f"{n.addr}{prefix}", "dev", "eth0")
    run("ip", "-n", n.ns, "link", "set", "eth0", "up")
    run("ip", "-n", n.ns, "link", "set", "lo", "up")
    run("ip", "-n", n.ns, "route", "replace", "default", "via", gateway)


def bridge_rules(bridge: str, lab: str) -> list[tuple[str, ...]]:
    """The iptables rules the lab named `lab` adds."""
    # The host's dockerd sets FORWARD to DROP and bridged traffic passes iptables here:
    # without these, nodes reach neither each other nor the registry.
    accept = ("-m", "comment", "--comment", f"fleet-lab-{lab}", "-j", "ACCEPT")
    return [
        ("FORWARD", "-i", bridge, "-o", bridge, *accept),
        ("INPUT", "-i", bridge, *accept),
    ]


def setup_bridge(bridge: str, address: str, lab: str) -> None:
    """The bridge up with the gateway's `address` ("10.250.7.1/24") and the lab's rules."""
    if not Path(f"/sys/class/net/{bridge}").exists():
        run("ip", "link", "add", bridge, "type", "bridge")
    run("ip", "addr", "replace", address, "dev", bridge)
    # Else the bridge takes its ports' lowest MAC, which changes as nodes come and go.
    run("ip", "link", "set", bridge, "address", mac_of(address.split("/")[0]))
    run("ip", "link", "set", bridge, "up")
    for rule in bridge_rules(bridge, lab):
        if run("iptables", "-w", "-C", *rule, check=False).returncode:
            run("iptables", "-w", "-I", *rule)
