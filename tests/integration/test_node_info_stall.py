"""An engine stuck behind its runtime answers its pings: it stays ready and nothing moves.

With the node's containerd frozen, its dockerd answers GET /_ping at once while
`info`, creates and stops hang: the stall a busy or wedged daemon shows. At the
default settings, for longer than FLEET_NODE_DOWN_AFTER, the node must never be
marked unreachable or down and no replica may move; once the runtime thaws, the
service is as it was.
"""

import time

import pytest
from django.conf import settings

from fleet.models import Event, EventKind, Node, Replica
from tests.integration.faults import stalled

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def test_an_engine_that_answers_pings_but_hangs_on_everything_else_stays_ready(
    fleet, watch_process
):
    fleet.create("web", replicas=3, update={"monitor": 0})
    fleet.converged("web", 3)
    placed = dict(Replica.objects.values_list("slot", "container_id"))
    victim = Replica.objects.get(slot=2).node.name
    statuses = set()
    with stalled(fleet.lab, victim):
        deadline = time.monotonic() + settings.FLEET_NODE_DOWN_AFTER + 5
        while time.monotonic() < deadline:
            statuses.add(Node.objects.get(name=victim).status)
            time.sleep(0.2)
    changes = Event.objects.filter(kind=EventKind.NODE_STATUS_CHANGED, node_name=victim)
    said = list(changes.values_list("old", "new", "reason"))
    assert statuses == {"ready"}, said
    fleet.converged("web", 3)
    assert dict(Replica.objects.values_list("slot", "container_id")) == placed, "a replica moved"
    moved = Event.objects.filter(kind=EventKind.REPLICA_RESCHEDULED).count()
    assert (moved, list(changes.values_list("old", "new"))) == (0, [("unknown", "ready")])
