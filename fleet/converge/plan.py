"""A converge's plan and what it is made of: the desired state and the nodes that go into
the planner, and the restarts, retries and transitions that come out of it."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleet.models import Replica

POLL = 0.25  # seconds between two looks while something is under way


@dataclass(frozen=True)
class Desired:
    """What a service should be: its count and the revision it should run."""

    replicas: int
    deployment_id: int
    status: str  # the target deployment's Deployment.Status
    spec: dict[str, Any] = field(hash=False)
    can_roll_back: bool = False  # an earlier revision exists to roll back to


@dataclass(frozen=True)
class NodeState:
    """What the planner needs to know of a node."""

    id: int
    name: str
    labels: dict[str, str] = field(hash=False)
    down: bool = False  # its replicas move elsewhere at once
    schedulable: bool = True  # it may take new replicas (ready and active)
    draining: bool = False  # drained: its replicas move to other nodes
    os: str = ""  # what its engine says, for constraints on node.os and node.arch
    arch: str = ""


@dataclass(frozen=True)
class Restart:
    """Start a broken replica's row again with a fresh container."""

    row: "Replica"
    restarts: int  # the row's restart count once restarted
    node_id: int | None = None  # restart on this node; None: wherever placement says
    event: str | None = None  # the EventKind this restart deserves, if any
    reason: str = ""


@dataclass(frozen=True)
class Retry:
    """When a broken replica may next be restarted (its backoff), and its count until then."""

    row: "Replica"
    retry_at: datetime
    restarts: int


@dataclass(frozen=True)
class Transition:
    """A change of the target deployment's status: one of the KINDS, with its reason."""

    BEGIN, ROLL_BACK, PAUSE, FAIL, SUCCEED, PROGRESS = KINDS = (
        "begin",
        "roll_back",
        "pause",
        "fail",
        "succeed",
        "progress",
    )

    kind: str
    reason: str = ""
    progress: int = 0


@dataclass
class Plan:
    """The next steps for one service, in the order the executor takes them.

    `begin` and `outcome` (a failed rollout: roll back, pause or fail) are made
    before anything else; when `outcome` is set, nothing else of the update is
    planned, and the next look works from the new state. `finish` (success or
    progress) is made after the acting.
    """

    new_slots: list[int] = field(default_factory=list)  # slots that get a fresh replica
    restarts: list[Restart] = field(default_factory=list)
    removals: list["Replica"] = field(default_factory=list)  # rows to remove with their containers
    # rows whose slot gets a new one (start-first)
    leaving: list["Replica"] = field(default_factory=list)
    retries: list[Retry] = field(default_factory=list)
    begin: Transition | None = None
    outcome: Transition | None = None
    finish: Transition | None = None
    wait: float | None = None  # something is under way: look again after this many seconds

    def wait_for(self, seconds: float) -> None:
        """Look again in `seconds`, or sooner if another reason says so."""
        self.wait = seconds if self.wait is None else min(self.wait, seconds)

    @property
    def pause(self) -> float:
        """How long to sleep before the next look."""
        return POLL if self.wait is None else self.wait

    @property
    def converged(self) -> bool:
        """Nothing to do and nothing to wait for."""
        return not (self.new_slots or self.restarts or self.removals) and self.wait is None
