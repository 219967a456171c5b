"""The alert processor: Events past a stored cursor become incidents, and conditions that
take time (a degraded service, a crash loop ending, a quiet period passing) are checked.

Beat runs process_events() every FLEET_ALERT_INTERVAL seconds (one indexed query
when nothing happened) and check_conditions() every FLEET_ALERT_CHECK_INTERVAL.
Both hold the cursor row locked for their whole transaction (on SQLite every
transaction takes the write lock at BEGIN), so two workers never handle the same
event, nor send the same alert, twice. Each alert is owed to its channels in rows
written in the same transaction (delivery.owe), and queued once it commits.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from fleet import live
from fleet.alerts import delivery, messages, rules
from fleet.models import AlertCursor, Event, Incident, Service
from fleet.models.alerts import Alert, AlertChannel

log = logging.getLogger(__name__)

BATCH = 500  # events read per transaction; a burst is worked through tick by tick
# On PostgreSQL ids are handed out before commit, so a lower id may commit after a higher
# one: the processor stops at a gap until it has seen it for this long, and looks again
# each tick. Counted from when the gap was first seen, not from the later event's
# created_at: that is when its row was made, which may be long before it committed.
GAP_WAIT = timedelta(seconds=5)


def _cursor() -> AlertCursor:
    """The cursor row, locked; made at the newest event when missing (history is not news)."""
    cursor = AlertCursor.objects.select_for_update().filter(pk=1).first()
    if cursor is None:
        newest = Event.objects.aggregate(newest=Coalesce(Max("id"), 0))["newest"]
        cursor, _ = AlertCursor.objects.get_or_create(pk=1, defaults={"last_event_id": newest})
    return cursor


def anything_new() -> bool:
    """Whether an event past the cursor exists (or there is no cursor yet): the one query
    of a quiet tick, by primary key."""
    newer = Event.objects.filter(pk__gt=OuterRef("last_event_id"))
    cursor = AlertCursor.objects.filter(pk=1).annotate(new=Exists(newer))
    found = cursor.values_list("new", flat=True).first()
    return found is None or found


def process_events(now: datetime | None = None) -> int:
    """Turn the events past the cursor into incidents and alerts; return how many were read."""
    if not anything_new():
        return 0
    with transaction.atomic():
        cursor = _cursor()
        now = now or timezone.now()
        events = list(Event.objects.filter(pk__gt=cursor.last_event_id).order_by("pk")[:BATCH])
        read = 0
        for event in events:
            gap = event.pk != cursor.last_event_id + 1
            if gap and connection.vendor == "postgresql" and _wait_at_gap(cursor, now):
                break
            for signal in rules.signals(event):
                apply(signal, event.created_at)
            cursor.last_event_id = event.pk
            read += 1
        cursor.save(update_fields=["last_event_id", "gap_after", "gap_seen_at"])
    return read


def _wait_at_gap(cursor: AlertCursor, now: datetime) -> bool:
    """Whether to stop at the gap after the cursor: until GAP_WAIT after it was first seen."""
    if cursor.gap_after != cursor.last_event_id or cursor.gap_seen_at is None:
        cursor.gap_after, cursor.gap_seen_at = cursor.last_event_id, now
    return now - cursor.gap_seen_at < GAP_WAIT


def _live(kind: str, subject: str, service: str = "") -> list[Incident]:
    found = Incident.objects.exclude(state=Incident.State.RESOLVED)
    if kind == "*":
        return list(found.filter(service_name=service))
    return list(found.filter(kind=kind, subject=subject))


def apply(signal: rules.Signal, at: datetime) -> None:
    """One signal's effect on its incident(s), messages included."""
    if signal.action == rules.NOTICE:
        title, body = messages.notice(signal.kind, signal.subject, signal.text, at)
        announce(None, Alert.Phase.NOTICE, [signal.kind], title, body)
        return
    incidents = _live(signal.kind, signal.subject, signal.service)
    if signal.action == rules.OPEN:
        incident = incidents[0] if incidents else None
        _open(incident, signal, at)
        return
    for incident in incidents:
        if signal.action == rules.CLEAR:
            _move(incident, *rules.on_clear(incident.state), at, signal.text)
        else:
            _move(incident, *rules.on_resolve(incident.state), at, signal.text)


def _open(incident: Incident | None, signal: rules.Signal, at: datetime) -> None:
    if incident is None:
        incident = Incident(
            kind=signal.kind,
            subject=signal.subject,
            node_name=signal.node,
            service_name=signal.service,
            opened_at=at,
            last_seen_at=at,
            state=Incident.State.PENDING,  # on_open opens it and says so
        )
        state, say = rules.on_open(None)
    else:
        state, say = rules.on_open(incident.state)
        incident.occurrences += 1
    incident.topic = signal.topic  # type: ignore[attr-defined]  # no field: read by _move
    incident.last_seen_at = at
    incident.summary = signal.text[:2000]
    _move(incident, state, say, at, signal.text)


def _move(
    incident: Incident, state: str | None, say: str | None, at: datetime, text: str = ""
) -> None:
    """Put an incident in `state`, saying so when `say`; None forgets a pending one."""
    if state is None:
        if incident.pk:
            pk = incident.pk  # delete() forgets it
            incident.delete()
            live.broadcast("incident", pk)
        return
    incident.state = state
    # The quiet period runs from when it first cleared, not from the latest look.
    resolving = state == rules.RESOLVING
    incident.clearing_since = (incident.clearing_since or at) if resolving else None
    if state == rules.RESOLVED:
        incident.resolved_at = at
        incident.resolution = text[:2000]
    incident.save()
    live.broadcast("incident", incident.pk)
    live.broadcast("incidents", "open")
    if say == rules.SAY_OPENED:
        topic = getattr(incident, "topic", "") or incident.kind
        title, body = messages.opened(incident.kind, incident.subject, topic, text, at)
        announce(incident, Alert.Phase.OPENED, [topic], title, body)
    elif say == rules.SAY_RESOLVED:
        title, body = messages.resolved(
            incident.kind, incident.subject, incident.opened_at, at, incident.occurrences, text
        )
        announce(incident, Alert.Phase.RESOLVED, _resolution_topics(incident), title, body)


def _resolution_topics(incident: Incident) -> list[str]:
    """Whoever was told it opened hears that it ended, and whoever asked for its end."""
    opened = incident.alerts.filter(phase=Alert.Phase.OPENED).values_list("topics", flat=True)
    topics = {topic for row in opened for topic in row} or {incident.kind}
    if incident.kind in rules.RESOLVED_TOPIC:
        topics.add(rules.RESOLVED_TOPIC[incident.kind])
    return sorted(topics)


def announce(
    incident: Incident | None, phase: str, topics: list[str], title: str, body: str
) -> Alert | None:
    """Record an alert and, in the same transaction, one delivery owed per channel that
    asked for its topics (a notice nobody asked for is not recorded: it is in the events
    already)."""
    channels = rules.recipients(AlertChannel.objects.only("name", "events", "enabled"), topics)
    if phase == Alert.Phase.NOTICE and not channels:
        return None
    alert = Alert.objects.create(
        incident=incident, phase=phase, topics=topics, title=title[:255], body=body
    )
    delivery.owe(alert, channels)
    log.info("alert %r to %d channel(s)", alert.title, len(channels))
    return alert


def check_conditions(now: datetime | None = None) -> None:
    """What time decides: degraded services, crash loops that ended, quiet periods over,
    deliveries a dead worker abandoned."""
    with transaction.atomic():
        _cursor()  # the lock: one processor at a time
        now = now or timezone.now()
        _check_services(now)
        _check_crash_loops(now)
        resolving = Incident.objects.filter(state=Incident.State.RESOLVING)
        for incident in resolving:
            # Resolving, so _move has set clearing_since.
            if rules.quiet_over(incident.state, incident.clearing_since, now, _quiet()):  # type: ignore[arg-type]
                text = f"clear since {incident.clearing_since:%H:%M:%S} UTC"
                _move(incident, *rules.on_resolve(incident.state), now, text)
        delivery.retry_abandoned(now)


def _quiet() -> float:
    return settings.FLEET_ALERT_QUIET


def _check_services(now: datetime) -> None:
    """Open, after FLEET_ALERT_DEGRADED_AFTER, an incident for a service short of serving
    replicas; none while another incident of the service says so already."""
    live_rows = Incident.objects.exclude(state=Incident.State.RESOLVED)
    others = set(live_rows.exclude(kind=rules.DEGRADED).values_list("service_name", flat=True))
    current = {i.subject: i for i in live_rows.filter(kind=rules.DEGRADED)}
    for service in Service.objects.with_counts():
        incident = current.get(service.name)
        short = rules.degraded(service)
        serving = f"{service.healthy_replicas} of {service.replicas} replicas serving"
        if short and service.name in others:
            # Another incident of the service (a crash loop, a failed deploy) says so already.
            if incident is not None and incident.state == Incident.State.PENDING:
                _move(incident, *rules.on_clear(incident.state), now)
        elif short and incident is None:
            Incident.objects.create(
                kind=rules.DEGRADED,
                subject=service.name,
                service_name=service.name,
                state=Incident.State.PENDING,
                opened_at=now,
                last_seen_at=now,
                summary=serving,
            )
        elif short and incident is not None:
            after = settings.FLEET_ALERT_DEGRADED_AFTER
            if rules.held_long_enough(incident.state, incident.opened_at, now, after):
                text = f"{serving} for over {after:g} s"
                _move(incident, rules.OPENED, rules.SAY_OPENED, incident.opened_at, text)
            elif incident.state == Incident.State.RESOLVING:
                _move(incident, *rules.on_open(incident.state), now)
        elif not short and incident is not None and incident.state != Incident.State.RESOLVING:
            _move(incident, *rules.on_clear(incident.state), now, serving)
    gone = live_rows.filter(kind=rules.DEGRADED).exclude(subject__in=Service.objects.values("name"))
    for incident in gone:
        _move(incident, *rules.on_resolve(incident.state), now, "the service was deleted")


def _check_crash_loops(now: datetime) -> None:
    """A crash loop clears once its service has every replica serving again."""
    looping = Incident.objects.filter(
        Q(state=Incident.State.OPEN) | Q(state=Incident.State.RESOLVING), kind=rules.CRASH_LOOPING
    )
    services = {
        s.name: s
        for s in Service.objects.with_counts().filter(name__in=[i.subject for i in looping])
    }
    for incident in looping:
        service = services.get(incident.subject)
        if service is None:
            _move(incident, *rules.on_resolve(incident.state), now, "the service was deleted")
            continue
        whole = not rules.degraded(service) and service.status == "running"
        serving = f"{service.healthy_replicas} of {service.replicas} replicas serving"
        if whole and incident.state == Incident.State.OPEN:
            _move(incident, *rules.on_clear(incident.state), now, serving)
        elif not whole and incident.state == Incident.State.RESOLVING:
            _move(incident, *rules.on_open(incident.state), now, serving)
