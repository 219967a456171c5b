"""The rules of alerting, as pure functions: no database, no clock but the one passed in.

An Event becomes zero or more Signals (open, clear, resolve, notice) about an
incident keyed by (kind, subject). An incident's state then moves:

    (none) --open--> open --clear--> resolving --quiet period passes--> resolved
                      ^                  |
                      +-----open---------+  (a recurrence within the quiet period:
                                            no message, one more occurrence)

`resolve` ends an incident at once (a deployment that succeeded, a node removed).
A condition measured over time (a degraded service) starts `pending`, and opens
only once it has held long enough; one that clears while pending is forgotten.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fleet.models import AlertChannel, Event

OPEN, CLEAR, RESOLVE, NOTICE = "open", "clear", "resolve", "notice"
PENDING, OPENED, RESOLVING, RESOLVED = "pending", "open", "resolving", "resolved"
# Messages an incident's move makes.
SAY_OPENED, SAY_RESOLVED = "opened", "resolved"

NODE_DOWN = "node.down"
DEGRADED = "service.degraded"
CRASH_LOOPING = "replica.crash_looping"
DEPLOYMENT_FAILED = "deployment.failed"
METRIC = "metric.threshold"
IMAGE_UPDATE = "image.update_available"
SERVICE_KINDS = (DEGRADED, CRASH_LOOPING, DEPLOYMENT_FAILED, METRIC)

# The topic of each incident's resolution, where it has one of its own; other
# resolutions go to the channels that receive the opening's topic.
RESOLVED_TOPIC = {NODE_DOWN: "node.up", DEGRADED: "service.recovered"}


@dataclass(frozen=True)
class Signal:
    """What one event says of one incident."""

    action: str
    kind: str  # an incident kind; for a notice, the topic
    subject: str = ""  # "" with kind "*": every incident of `service`
    topic: str = ""  # the opening's topic (deployment.failed or .rolled_back ...)
    node: str = ""
    service: str = ""
    text: str = ""


class CountedService(Protocol):
    """What degraded() reads of a service loaded by Service.objects.with_counts()."""

    @property
    def status(self) -> str: ...

    @property
    def replicas(self) -> int: ...

    @property
    def healthy_replicas(self) -> int: ...


def metric_subject(event: "Event") -> str:
    """A threshold incident's subject: "<service or node>/<rule>".

    The contract with the metrics side: the Event names its service (or node) and the
    rule in `new` (e.g. "cpu above 80% for 5 min"); `reason` says what was measured.
    An event without `new` is keyed by its reason up to the first colon.
    """
    rule = event.new or event.reason.partition(":")[0]
    return f"{event.service_name or event.node_name}/{rule[:120]}"


def signals(event: "Event") -> list[Signal]:
    """What an Event means for incidents and notices: a list of Signals."""
    kind, node, service = event.kind, event.node_name, event.service_name
    text = event.reason
    if kind == "node.status_changed" and node:
        if event.new == "down":
            return [Signal(OPEN, NODE_DOWN, node, NODE_DOWN, node=node, text=text)]
        if event.new == "ready":
            return [Signal(CLEAR, NODE_DOWN, node, node=node, text=text)]
    elif kind == "node.removed":
        return [Signal(RESOLVE, NODE_DOWN, node, node=node, text="the node was removed")]
    elif kind == "replica.crash_looping":
        return [Signal(OPEN, CRASH_LOOPING, service, CRASH_LOOPING, node, service, text)]
    elif kind == "deployment.rolled_back" and event.via != "system":
        # Someone chose to go back: news for whoever asked, not a failure to resolve.
        what = f"{event.old} -> {event.new}, by {event.actor}" + (f": {text}" if text else "")
        return [Signal(NOTICE, kind, service, service=service, text=what)]
    elif kind in ("deployment.failed", "deployment.rolled_back"):
        what = f"{event.old}: {text}" if event.old else text
        return [Signal(OPEN, DEPLOYMENT_FAILED, service, kind, service=service, text=what)]
    elif kind == "deployment.succeeded":
        what = f"{event.new} succeeded" + (f": {text}" if text else "")
        return [
            Signal(RESOLVE, DEPLOYMENT_FAILED, service, service=service, text=what),
            Signal(NOTICE, "deployment.succeeded", service, service=service, text=what),
        ]
    elif kind == "service.deleted":
        return [Signal(RESOLVE, "*", service=service, text="the service was deleted")]
    elif kind == "metric.threshold_exceeded":
        subject = metric_subject(event)
        return [Signal(OPEN, METRIC, subject, METRIC, node, service, text or event.new)]
    elif kind == "service.image_update_available":
        # News, not a problem: nothing to resolve later. The check records it once a digest.
        what = f"{event.old or 'unknown'} -> {event.new}: {text}"
        return [Signal(NOTICE, IMAGE_UPDATE, service, service=service, text=what)]
    elif kind == "metric.threshold_cleared":
        subject = metric_subject(event)
        return [Signal(CLEAR, METRIC, subject, node=node, service=service, text=text)]
    return []


def on_open(state: str | None) -> tuple[str | None, str | None]:
    """(new state, message) when the incident's condition holds (again)."""
    if state in (None, RESOLVED):
        return OPENED, SAY_OPENED
    if state == RESOLVING:
        return OPENED, None  # it recurred within the quiet period: still the one incident
    return state, None


def on_clear(state: str | None) -> tuple[str | None, str | None]:
    """(new state, message) when the condition stops holding; None for a pending incident
    that never held long enough (forgotten, nobody was told)."""
    if state == OPENED:
        return RESOLVING, None
    if state == PENDING:
        return None, None
    return state, None


def on_resolve(state: str | None) -> tuple[str | None, str | None]:
    """(new state, message) when the incident ends at once."""
    if state in (OPENED, RESOLVING):
        return RESOLVED, SAY_RESOLVED
    if state == PENDING:
        return None, None
    return state, None


def quiet_over(state: str, clearing_since: datetime, now: datetime, quiet: float) -> bool:
    """Whether a resolving incident has been clear for the whole quiet period."""
    return state == RESOLVING and now - clearing_since >= timedelta(seconds=quiet)


def held_long_enough(state: str, since: datetime, now: datetime, after: float) -> bool:
    """Whether a pending condition has held for `after` seconds, so it opens."""
    return state == PENDING and now - since >= timedelta(seconds=after)


def degraded(service: CountedService) -> bool:
    """Fewer replicas serving than desired, outside a rollout (which has its own verdict)
    and a deletion; reads Service.objects.with_counts()'s annotation."""
    status = service.status
    if status in ("new", "deploying", "deleting"):
        return False
    return service.healthy_replicas < service.replicas


def recipients(channels: Iterable["AlertChannel"], topics: Sequence[str]) -> list["AlertChannel"]:
    """The channels an alert with these topics goes to: enabled, and asked for one."""
    return [c for c in channels if c.enabled and any(t in c.events for t in topics)]


def backoff(attempt: int, base: float = 2.0, cap: float = 60.0) -> float:
    """Seconds to wait before the attempt after `attempt` (1-based): 2, 4, 8 ... up to cap."""
    return min(base * 2 ** (attempt - 1), cap)
