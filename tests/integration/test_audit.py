"""The audit trail: who did what to which object and when, filtered alike on page and API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fleet.models import Actor, Event, EventKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def history():
    """Four events by three actors on two objects, an hour apart."""
    start = timezone.now().replace(microsecond=0) - timedelta(hours=4)
    rows = [
        (EventKind.SERVICE_SCALED, Actor("ann", "web"), {"service": "web"}),
        (EventKind.NODE_AVAILABILITY_CHANGED, Actor("bob", "token"), {"node": "edge-1"}),
        (EventKind.DEPLOYMENT_CREATED, Actor("ann", "api"), {"service": "api"}),
        (EventKind.REPLICA_DIED, Actor(), {"service": "web", "node": "edge-1"}),
    ]
    for hour, (kind, actor, objects) in enumerate(rows):
        event = Event.objects.record(kind, actor=actor, **objects)
        Event.objects.filter(pk=event.pk).update(created_at=start + timedelta(hours=hour))
    return start


def shown(page):
    """The (kind, actor) of every event row on a page, top to bottom."""
    import re

    html = page.content.decode()
    return re.findall(r'<span class="kind">([^<]+)</span>.*?by ([\w-]+)', html, re.S)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, [("replica.died", "system"), ("deployment.created", "ann"),
              ("node.availability_changed", "bob"), ("service.scaled", "ann")]),
        ({"actor": "ann"}, [("deployment.created", "ann"), ("service.scaled", "ann")]),
        ({"service": "web"}, [("replica.died", "system"), ("service.scaled", "ann")]),
        ({"node": "edge-1"}, [("replica.died", "system"), ("node.availability_changed", "bob")]),
        ({"kind": "deployment.created"}, [("deployment.created", "ann")]),
        ({"actor": "ann", "service": "web"}, [("service.scaled", "ann")]),
    ],
)  # fmt: skip
def test_the_events_page_and_the_api_filter_by_who_what_and_which(
    client, viewer, api, history, query, expected
):
    client.force_login(viewer)
    assert shown(client.get("/events/", query)) == expected
    listed = api.get("/api/events/", query).json()["results"]
    assert [(e["kind"], e["actor"]) for e in listed] == expected


def test_the_events_page_and_the_api_filter_by_time(client, viewer, api, history):
    client.force_login(viewer)
    since = (history + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    until = (history + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")
    expected = [("deployment.created", "ann"), ("node.availability_changed", "bob")]
    page = client.get("/events/", {"since": since, "until": until})
    assert shown(page) == expected
    # A closed time range is history: the list is not live.
    assert 'data-live-container="event"' not in page.content.decode()
    listed = api.get("/api/events/", {"since": since, "until": until}).json()["results"]
    assert [(e["kind"], e["actor"]) for e in listed] == expected


def test_an_open_filter_stays_live_for_matching_events(client, viewer, history):
    client.force_login(viewer)
    html = client.get("/events/", {"actor": "ann", "service": "web"}).content.decode()
    assert 'data-live-container="event"' in html
    assert 'data-filter-actor="ann"' in html and 'data-filter-service="web"' in html


@pytest.mark.parametrize(
    "query", [{"since": "yesterday"}, {"kind": "node.exploded"}, {"until": "2026-13-45T00:00"}]
)
def test_a_bad_filter_says_what_is_wrong_and_lists_nothing(client, viewer, api, history, query):
    client.force_login(viewer)
    page = client.get("/events/", query)
    assert page.status_code == 200
    assert 'class="msg-error"' in page.content.decode()
    assert shown(page) == []
    assert api.get("/api/events/", query).status_code == 400


def test_the_form_shows_the_filter_applied_even_for_someone_without_events(client, viewer):
    client.force_login(viewer)
    html = client.get("/events/", {"actor": "zed", "kind": "service.scaled"}).content.decode()
    assert '<option value="zed" selected>' in html
    assert '<option value="service.scaled" selected>' in html
    assert "No event matches." not in html  # an open filter is live: it waits for matches
