"""Observations applied in the order they happened, not the order they arrived.

The watch may lag, and a reconnecting stream replays events since the last one
seen; a resync's listing may be applied while an event is. Each row must end as
the newest observation says, and each change must be recorded once.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from fleet.engine import labels
from fleet.engine.containers import ObservedContainer
from fleet.models import Deployment, Event, EventKind, Node, Replica, Service
from fleet.nodes import observe

pytestmark = pytest.mark.django_db

CONTAINER = "c" * 64


@pytest.fixture
def running():
    """A replica seen running a minute ago."""
    node = Node.objects.create(name="n1", endpoint="tcp://127.0.0.1:1", status="ready")
    service = Service.objects.create(name="web", replicas=1)
    spec = {"image": "demo:1", "healthcheck": None}
    deployment = Deployment.objects.create(service=service, revision=1, spec=spec)
    minute_ago = timezone.now() - timedelta(minutes=1)
    return Replica.objects.create(
        service=service,
        deployment=deployment,
        slot=1,
        node=node,
        container_id=CONTAINER,
        state=Replica.State.RUNNING,
        started_at=minute_ago,
        observed_at=minute_ago,
    )


def event(replica, action, when, **attributes):
    attributes = {labels.REPLICA: str(replica.pk), **attributes}
    nanos = int(when.timestamp() * 1_000_000_000)
    return {
        "Action": action,
        "Actor": {"ID": CONTAINER, "Attributes": attributes},
        "timeNano": nanos,
    }


def listed(state, exit_code=None):
    return ObservedContainer(CONTAINER, "web.1", {}, state, "none", exit_code, {}, 0)


def died_count():
    return Event.objects.filter(kind=EventKind.REPLICA_DIED).count()


def test_a_late_start_event_does_not_undo_a_newer_listing(running):
    started = timezone.now() - timedelta(seconds=30)
    observe.apply_listing(running.node, [listed("exited", 137)], timezone.now())
    assert Replica.objects.get(pk=running.pk).state == Replica.State.EXITED
    # The watch lagged: the start it now applies happened before the listing.
    observe.apply_event(running.node, event(running, "start", started))
    assert Replica.objects.get(pk=running.pk).state == Replica.State.EXITED


def test_a_death_seen_by_a_resync_and_replayed_by_the_stream_is_recorded_once(running):
    died_at = timezone.now() - timedelta(seconds=5)
    observe.apply_listing(running.node, [listed("exited", 137)], timezone.now())
    # The reopened stream replays from the last event it had seen: the start, then the death.
    observe.apply_event(running.node, event(running, "start", died_at - timedelta(seconds=20)))
    observe.apply_event(running.node, event(running, "die", died_at, exitCode="137"))
    assert died_count() == 1
    assert Replica.objects.get(pk=running.pk).state == Replica.State.EXITED


def test_a_listing_and_an_event_applied_at_once_record_one_death(running):
    stale = Replica.objects.select_related("service", "deployment").get(pk=running.pk)
    observe.apply_event(running.node, event(running, "die", timezone.now(), exitCode="1"))
    # A listing that read the row before the event was written, and is written after it.
    observe._save_seen(stale, listed("exited", 1), running.node, timezone.now())
    assert died_count() == 1
    assert Replica.objects.get(pk=running.pk).exit_code == 1


def test_the_start_of_a_pending_replica_counts_even_if_recorded_after_it(running):
    Replica.objects.filter(pk=running.pk).update(
        state=Replica.State.PENDING, started_at=None, observed_at=timezone.now()
    )
    # The container started just before its creator recorded it.
    observe.apply_event(
        running.node, event(running, "start", timezone.now() - timedelta(seconds=1))
    )
    assert Replica.objects.get(pk=running.pk).state == Replica.State.RUNNING
    assert Event.objects.filter(kind=EventKind.REPLICA_STARTED).count() == 1


def test_a_listing_begun_after_a_death_that_still_shows_it_running_does_not_revive_it(running):
    """The engine sends `die` a little before its listings stop calling the container
    running: a converge's listing begun just after the event must not undo it."""
    stale = Replica.objects.select_related("service", "deployment").get(pk=running.pk)
    died_at = timezone.now()
    observe.apply_event(running.node, event(running, "die", died_at, exitCode="137"))
    # Read before the event was written (the converge's rows) and after it (a resync's).
    observe._save_seen(stale, listed("running"), running.node, died_at + timedelta(seconds=0.03))
    observe.apply_listing(running.node, [listed("running")], died_at + timedelta(seconds=0.05))
    row = Replica.objects.get(pk=running.pk)
    assert (row.state, row.exit_code) == (Replica.State.EXITED, 137)
    assert died_count() == 1
    assert not Event.objects.filter(kind=EventKind.REPLICA_STARTED).exists()
