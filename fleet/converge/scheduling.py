"""Where new replicas go: constraints, spread and published ports, as pure functions."""

import re
from collections.abc import Iterable, Sequence, Sized
from dataclasses import dataclass, field
from typing import Protocol

from fleet.models.validation import LABEL_KEY

NODE_NAME, NODE_OS, NODE_ARCH = "node.name", "node.os", "node.arch"
# What a constraint may name besides labels: the node's name and what its engine says.
FACTS = {NODE_NAME: "name", NODE_OS: "os", NODE_ARCH: "arch"}
CONSTRAINT = re.compile(r"^\s*(?P<key>[^=!\s]+)\s*(?P<op>==|!=)\s*(?P<value>[^=\s](?:.*\S)?)\s*$")
CONSTRAINT_FORMS = "KEY==VALUE or KEY!=VALUE, such as zone==a, node.name!=lab-1 or node.arch==arm64"
# An engine reports its machine's name for an architecture (x86_64, aarch64); images
# and people name it as Go does (amd64, arm64). Either matches the other.
ARCH_NAMES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "armv8": "arm64",
    "armv7l": "arm",
    "armhf": "arm",
    "i386": "386",
    "i686": "386",
}


def arch_name(arch: str) -> str:
    """An architecture's name as Go and image platforms write it: x86_64 -> amd64."""
    arch = (arch or "").strip().lower()
    return ARCH_NAMES.get(arch, arch)


class Placeable(Protocol):
    """A node as constraints see it: fleet.models.Node and NodeView both fit."""

    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> dict[str, str]: ...

    @property
    def os(self) -> str: ...

    @property
    def arch(self) -> str: ...


MAX_REASONS = 5


@dataclass(frozen=True)
class Constraint:
    """One rule a node must meet: a label (or node.name) equal or not equal to a value."""

    key: str
    op: str
    value: str

    def matches(self, node: Placeable) -> bool:
        """Whether a node meets the rule; an absent label or fact never equals anything."""
        actual, value = self.actual(node), self.value
        if self.key == NODE_ARCH:
            actual, value = actual and arch_name(actual), arch_name(value)
        return (actual == value) == (self.op == "==")

    def actual(self, node: Placeable) -> str | None:
        """What the node has for the rule's key: a fact, a label's value, or None."""
        if self.key in FACTS:
            return getattr(node, FACTS[self.key]) or None
        return node.labels.get(self.key)

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"


def parse_constraint(text: str) -> Constraint:
    """A Constraint from text such as "zone==a", "zone != b" or "node.name==lab-1"."""
    found = CONSTRAINT.match(text) if isinstance(text, str) else None
    if not found or "=" in found["value"]:
        raise ValueError(f"Constraint {text!r} is not understood: use {CONSTRAINT_FORMS}.")
    key = found["key"]
    if key not in FACTS and not LABEL_KEY.fullmatch(key):
        raise ValueError(
            f"Constraint {text!r} names {key!r}, which is not a label key: "
            "use 1-128 letters, digits, '.', '_', '/' or '-', or node.name, node.os "
            "or node.arch."
        )
    return Constraint(key, found["op"], found["value"])


@dataclass(frozen=True)
class NodeView:
    """What placement needs to know about one node, gathered by the caller."""

    name: str
    # Left out of the hash because a dict cannot be hashed; equality still compares it.
    labels: dict[str, str] = field(hash=False)
    schedulable: bool
    load: int = 0
    os: str = ""  # what the engine reports: linux, windows
    arch: str = ""  # likewise: x86_64, aarch64
    service_replicas: int = 0
    published: frozenset[tuple[int, str]] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "published", frozenset(self.published))


class PlacementError(Exception):
    """The plan cannot be met; str() says why in a sentence an operator understands."""


def place(
    nodes: list[NodeView],
    count: int,
    *,
    constraints: Sequence[Constraint] = (),
    ports: Iterable[tuple[int, str]] = (),
) -> list[str]:
    """Node names for `count` new replicas, in order: all of them, or PlacementError."""
    if count < 0:
        raise ValueError(f"Cannot place {count} replicas.")
    if count == 0:
        return []
    eligible = [node for node in nodes if _eligible(node, constraints)]
    if not eligible:
        raise PlacementError(_no_eligible_node(nodes, constraints))
    ports = frozenset(ports)
    if not ports:
        return _spread(eligible, count, capacity=None)
    free = [node for node in eligible if not node.published & ports]
    if len(free) < count:
        raise PlacementError(_ports_taken(eligible, free, count, ports))
    # A host port can be bound once per node, so each node takes at most one new replica.
    return _spread(free, count, capacity=1)


def _eligible(node: NodeView, constraints: Iterable[Constraint]) -> bool:
    return node.schedulable and all(c.matches(node) for c in constraints)


def _spread(nodes: list[NodeView], count: int, capacity: int | None) -> list[str]:
    """Greedy spread: fewest replicas of the service, then least load, then name."""
    placed = dict.fromkeys((node.name for node in nodes), 0)
    chosen: list[str] = []
    for _ in range(count):
        open_nodes = [n for n in nodes if capacity is None or placed[n.name] < capacity]
        best = min(
            open_nodes,
            key=lambda n: (n.service_replicas + placed[n.name], n.load + placed[n.name], n.name),
        )
        placed[best.name] += 1
        chosen.append(best.name)
    return chosen


def _no_eligible_node(nodes: list[NodeView], constraints: Sequence[Constraint]) -> str:
    if not nodes:
        return "There are no nodes to place replicas on."
    if not constraints:
        names = _listing([node.name for node in nodes])
        return f"No node is ready and active: {names} {_are(nodes)} drained, paused or down."
    wanted = " and ".join(map(str, constraints))
    reasons = "; ".join(_capped([_why_left_out(node, constraints) for node in nodes]))
    return f"No ready, active node satisfies {wanted} ({_count(nodes, 'node')}: {reasons})."


def _why_left_out(node: NodeView, constraints: Iterable[Constraint]) -> str:
    if not node.schedulable:
        return f"{node.name} is not ready and active"
    failed = next(c for c in constraints if not c.matches(node))
    actual = failed.actual(node)
    if failed.key == NODE_NAME:
        return f"{node.name} fails {failed}"
    if actual is None:
        what = "label" if failed.key not in FACTS else "(its engine has not said yet)"
        return f"{node.name} has no {failed.key} {what}"
    return f"{node.name} has {failed.key}={actual}"


def _ports_taken(
    eligible: list[NodeView], free: list[NodeView], count: int, ports: frozenset[tuple[int, str]]
) -> str:
    listed = _listing([f"{port}/{protocol}" for port, protocol in sorted(ports)])
    if not free:
        names = _listing([node.name for node in eligible])
        which = f"port {listed}" if len(ports) == 1 else f"one of ports {listed}"
        outcome = f"none of the {count} new replicas can" if count > 1 else "the new replica cannot"
        return f"Every eligible node ({names}) already publishes {which}, so {outcome} be placed."
    noun = "port" if len(ports) == 1 else "ports"
    return (
        f"Only {len(free)} of {count} new replicas can be placed: {noun} {listed} can be "
        f"published once per node and {_are(ports)} free on only {len(free)} of the "
        f"{_count(eligible, 'eligible node')}."
    )


def _are(items: Sized) -> str:
    return "is" if len(items) == 1 else "are"


def _count(items: Sized, noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


def _capped(words: list[str]) -> list[str]:
    """The first few words, then "and N more", so a long list does not drown the sentence."""
    if len(words) <= MAX_REASONS:
        return list(words)
    return [*words[: MAX_REASONS - 1], f"and {len(words) - MAX_REASONS + 1} more"]


def _listing(words: list[str]) -> str:
    """Words joined as in a sentence: "a", "a and b", "a, b and c"."""
    words = _capped(words)
    if words[-1].startswith("and "):
        return ", ".join(words[:-1]) + " " + words[-1]
    if len(words) <= 2:
        return " and ".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
