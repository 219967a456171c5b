"""The alert processor on the database: events and conditions into incidents and alerts,
grouped, with recipients chosen by topic (deliveries are queued once the work commits)."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from fleet.alerts import incidents
from fleet.models import Alert, AlertChannel, Deployment, Event, EventKind, Incident, Service

# Event ids from 1 in each test, as on a fresh database: PostgreSQL's sequences are not
# rolled back with a test, and a gap after the cursor is waited on as a transaction that has
# not committed yet (incidents.GAP_WAIT).
pytestmark = pytest.mark.django_db(transaction=True, reset_sequences=True)


def record(kind, **fields):
    Event.objects.record(kind, **fields)
    incidents.process_events()


def phases(**filters):
    return list(Alert.objects.filter(**filters).order_by("id").values_list("phase", "title"))


def test_a_flapping_node_is_one_incident_with_one_alert_and_one_resolution():
    incidents.process_events()
    for _ in range(4):
        record(EventKind.NODE_STATUS_CHANGED, node="lab-2", old="unreachable", new="down")
        record(EventKind.NODE_STATUS_CHANGED, node="lab-2", old="down", new="ready")
    record(EventKind.NODE_STATUS_CHANGED, node="lab-3", old="ready", new="unreachable")
    record(EventKind.NODE_STATUS_CHANGED, node="lab-3", old="unreachable", new="ready")
    incident = Incident.objects.get()
    assert (incident.subject, incident.state, incident.occurrences) == ("lab-2", "resolving", 4)
    later = timezone.now() + timedelta(seconds=settings.FLEET_ALERT_QUIET)
    incidents.check_conditions(now=later)
    assert phases() == [
        ("opened", "[Fleet] node lab-2 is down"),
        ("resolved", "[Fleet] Resolved: node lab-2 is up again"),
    ]
    assert "4 times" in Alert.objects.get(phase="resolved").body
    record(EventKind.NODE_STATUS_CHANGED, node="lab-2", old="unreachable", new="down")
    assert Incident.objects.filter(state="open").count() == 1  # a new incident, a new alert
    assert len(phases()) == 3


def test_a_resolution_goes_to_whoever_heard_the_opening_and_to_who_asked_for_it():
    ops = AlertChannel.objects.create(name="ops", url="json://127.0.0.1:9/a", events=["node.down"])
    AlertChannel.objects.create(name="up", url="json://127.0.0.1:9/b", events=["node.up"])
    AlertChannel.objects.create(
        name="deploys", url="json://127.0.0.1:9/c", events=["deployment.failed"]
    )
    incidents.process_events()
    record(EventKind.NODE_STATUS_CHANGED, node="lab-2", old="unreachable", new="down")
    record(EventKind.NODE_REMOVED, node="lab-2")  # resolves at once
    opened, resolved = Alert.objects.order_by("id")
    assert opened.topics == ["node.down"]
    assert resolved.topics == ["node.down", "node.up"]
    assert ops.wants(resolved.topics)


def service_short_of_replicas(name="web", replicas=2):
    service = Service.objects.create(name=name, replicas=replicas)
    service.current_deployment = Deployment.objects.create(
        service=service, revision=1, spec={"image": "x"}, status="succeeded"
    )
    service.save()
    return service


def test_a_service_short_of_replicas_alerts_only_once_it_has_been_for_the_setting():
    service = service_short_of_replicas()
    now = timezone.now()
    incidents.check_conditions(now=now)
    assert Incident.objects.get().state == "pending" and phases() == []
    after = settings.FLEET_ALERT_DEGRADED_AFTER
    incidents.check_conditions(now=now + timedelta(seconds=after - 1))
    assert phases() == []
    incidents.check_conditions(now=now + timedelta(seconds=after))
    assert phases() == [("opened", "[Fleet] service web is degraded")]
    assert Alert.objects.get().topics == ["service.degraded"]
    Service.objects.filter(pk=service.pk).update(replicas=0)  # nothing missing any more
    incidents.check_conditions(now=now + timedelta(seconds=after + 1))
    assert Incident.objects.get().state == "resolving"
    quiet = settings.FLEET_ALERT_QUIET
    incidents.check_conditions(now=now + timedelta(seconds=after + 1 + quiet))
    assert phases()[-1] == ("resolved", "[Fleet] Resolved: service web has recovered")
    assert Alert.objects.get(phase="resolved").topics == ["service.degraded", "service.recovered"]


def test_a_short_spell_is_forgotten_and_a_crash_loop_says_it_instead_of_degraded():
    service = service_short_of_replicas()
    now = timezone.now()
    incidents.check_conditions(now=now)
    Service.objects.filter(pk=service.pk).update(replicas=0)
    incidents.check_conditions(now=now + timedelta(seconds=5))
    assert Incident.objects.count() == 0  # pending, cleared before anyone was told
    Service.objects.filter(pk=service.pk).update(replicas=2)
    incidents.process_events()
    record(EventKind.REPLICA_CRASH_LOOPING, service="web", reason="slot 1 exited with code 3")
    for seconds in (0, 60, 120):
        incidents.check_conditions(now=now + timedelta(seconds=seconds))
    assert list(Incident.objects.values_list("kind", "state")) == [
        ("replica.crash_looping", "open")
    ]
    assert phases() == [("opened", "[Fleet] service web has a replica crash-looping")]


def test_a_deleted_service_resolves_its_incidents_at_once():
    incidents.process_events()
    record(EventKind.DEPLOYMENT_ROLLED_BACK, service="web", old="revision 2", new="revision 1")
    record(EventKind.REPLICA_CRASH_LOOPING, service="web", reason="slot 1")
    record(EventKind.SERVICE_DELETED, service="web")
    assert set(Incident.objects.values_list("state", flat=True)) == {"resolved"}
    assert [p for p, _ in phases()] == ["opened", "opened", "resolved", "resolved"]
    assert phases()[0][1] == "[Fleet] deployment of web failed and was rolled back"


def test_a_deployment_that_succeeds_is_a_notice_and_resolves_the_failed_one():
    AlertChannel.objects.create(
        name="deploys", url="json://127.0.0.1:9/c", events=["deployment.succeeded"]
    )
    incidents.process_events()
    record(EventKind.DEPLOYMENT_SUCCEEDED, service="api", new="revision 1")
    record(EventKind.DEPLOYMENT_FAILED, service="web", old="revision 2", reason="cannot pull")
    record(EventKind.DEPLOYMENT_FAILED, service="web", old="revision 3", reason="cannot pull")
    record(EventKind.DEPLOYMENT_SUCCEEDED, service="web", new="revision 4")
    assert phases() == [
        ("notice", "[Fleet] deployment of api succeeded"),
        ("opened", "[Fleet] deployment of web failed"),
        ("resolved", "[Fleet] Resolved: deployment of web succeeded"),
        ("notice", "[Fleet] deployment of web succeeded"),
    ]
    assert Incident.objects.get().occurrences == 2
    AlertChannel.objects.all().delete()
    record(EventKind.DEPLOYMENT_SUCCEEDED, service="api", new="revision 2")
    assert len(phases()) == 4  # a notice nobody asked for is not recorded


def down(node):
    return {"node": node, "old": "unreachable", "new": "down"}


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="runs on PostgreSQL only (DATABASE_URL=postgres://...): SQLite hands out ids in "
    "commit order, so its processor never meets a gap that may still fill",
)
def test_a_gap_is_waited_on_from_when_it_is_first_seen_not_from_the_later_events_time():
    incidents.process_events()
    took_id, commit = threading.Event(), threading.Event()

    def slow_transaction():
        try:
            with transaction.atomic():
                Event.objects.record(EventKind.NODE_STATUS_CHANGED, **down("lab-2"))
                took_id.set()
                commit.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_transaction)
    thread.start()
    took_id.wait(10)
    # A later id, committed first, whose row was made a minute before its transaction
    # committed: a wait counted from its created_at would be over before it began.
    later = Event.objects.record(EventKind.NODE_STATUS_CHANGED, **down("lab-3"))
    Event.objects.filter(pk=later.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    assert incidents.process_events() == 0  # stops at the gap: an id not yet committed
    commit.set()
    thread.join(10)
    assert incidents.process_events() == 2
    assert list(Incident.objects.order_by("id").values_list("subject", flat=True)) == [
        "lab-2",
        "lab-3",
    ]
    # A gap that never fills (its transaction rolled back) holds the processor GAP_WAIT
    # from when it was first seen, then no longer.
    with pytest.raises(RuntimeError), transaction.atomic():
        Event.objects.record(EventKind.NODE_STATUS_CHANGED, **down("lab-4"))
        raise RuntimeError("rolled back")
    Event.objects.record(EventKind.NODE_STATUS_CHANGED, **down("lab-5"))
    first_seen = timezone.now()
    assert incidents.process_events(now=first_seen) == 0
    wait = incidents.GAP_WAIT
    assert incidents.process_events(now=first_seen + wait - timedelta(seconds=1)) == 0
    assert incidents.process_events(now=first_seen + wait) == 1
    assert Incident.objects.filter(subject="lab-5").exists()
