"""Event feeds are summaries: repeats folded into one line, the full log paged a link away."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fleet.models import Event, EventKind, Node

pytestmark = pytest.mark.django_db


def record(kind, minutes_ago, **fields):
    event = Event.objects.record(kind, **fields)
    Event.objects.filter(pk=event.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return event


@pytest.fixture
def crash_loop():
    """Slot 3 of web died five times in four minutes, with a scale and a deploy in between."""
    for minutes in (4, 3, 2, 1, 0):
        record(EventKind.REPLICA_DIED, minutes, service="web", reason="slot 3 exit code 1")
    record(EventKind.SERVICE_SCALED, 2.5, service="web", old="2", new="3")
    record(EventKind.REPLICA_DIED, 3.5, service="web", reason="slot 1 exit code 137")


def test_repeats_fold_into_their_newest_with_a_count_and_a_span(crash_loop):
    lines = Event.objects.folded()
    assert [(e.kind, e.reason or e.new, e.repeats) for e in lines] == [
        ("replica.died", "slot 3 exit code 1", 5),
        ("service.scaled", "3", 1),
        ("replica.died", "slot 1 exit code 137", 1),
    ]
    newest = lines[0]
    assert round((newest.created_at - newest.first_at).total_seconds() / 60) == 4


def test_a_feed_has_at_most_its_limit_of_lines_and_still_counts_older_repeats():
    for n in range(30):
        record(EventKind.SERVICE_SCALED, 30 - n, service="web", old=str(n), new=str(n + 1))
    record(EventKind.SERVICE_SCALED, 40, service="web", old="29", new="30")  # older, same as newest
    lines = Event.objects.folded(limit=20)
    assert len(lines) == 20
    assert lines[0].new == "30" and lines[0].repeats == 2


def test_the_service_page_shows_the_folded_feed_and_links_to_the_full_log(
    client, viewer, crash_loop
):
    from fleet import services
    from fleet.services.spec import ServiceSpecSerializer

    spec = ServiceSpecSerializer(data={"name": "web", "image": "demo:1"})
    spec.is_valid(raise_exception=True)
    services.create(spec.validated_data)
    client.force_login(viewer)
    html = client.get("/services/web/").content.decode()
    assert html.count('<span class="reason">slot 3 exit code 1</span>') == 1
    assert "5 times in 4 min" in html
    assert 'href="/events/?service=web"' in html


def test_the_node_and_overview_feeds_fold_too(client, viewer):
    Node.objects.create(name="edge-1", endpoint="tcp://127.0.0.1:2375")
    for minutes in (3, 2, 1):
        record(EventKind.NODE_STATUS_CHANGED, minutes, node="edge-1", old="ready", new="down")
    client.force_login(viewer)
    for url in ("/nodes/edge-1/", "/"):
        html = client.get(url).content.decode()
        assert html.count('<span class="kind">node.status_changed</span>') == 1, url
        assert "3 times in 2 min" in html, url


def test_repeats_within_a_minute_read_as_the_live_feed_words_them(client, viewer):
    for seconds in (40, 20, 0):
        record(EventKind.REPLICA_STARTED, seconds / 60, service="web", reason="slot 1")
    client.force_login(viewer)
    html = client.get("/").content.decode()
    assert "3 times in under a minute" in html
    assert "0 minutes" not in html


def test_the_events_page_is_the_whole_log_in_pages(client, viewer):
    for n in range(130):
        record(EventKind.SERVICE_SCALED, 200 - n, service="web", old=str(n), new=str(n + 1))
    client.force_login(viewer)
    first = client.get("/events/?service=web")
    assert len(first.context["events"]) == 100
    assert "130 matching events, page 1 of 2" in first.content.decode()
    assert 'href="?service=web&amp;page=2"' in first.content.decode()
    second = client.get("/events/?service=web&page=2")
    assert [e.new for e in second.context["events"]] == [str(n) for n in range(30, 0, -1)]
    assert second.context["live"] is False  # older pages do not take new events
