# ruff: noqa: F811
"""Alert channels through the API (admins only, URLs checked and never shown whole), the
read-only incidents and deliveries, and the processor on events recorded directly: the
metrics' threshold events open and resolve one incident, delivered to a real webhook."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from fleet.alerts import delivery, incidents
from fleet.models import Alert, AlertChannel, Delivery, Event, EventKind, Incident
from tests.conftest import api_for

# The receivers' fixtures, imported to be used by name: pytest passes them as arguments.
from tests.integration.receivers import inbox, receivers  # noqa: F401

pytestmark = pytest.mark.django_db

SECRET = "hunter22-s3cr3t"


def make_channel(api, url, **fields):
    body = {"name": "ops", "url": url, "events": ["node.down", "metric.threshold"], **fields}
    return api.post("/api/alert-channels/", body, format="json")


def test_an_admin_makes_a_channel_and_never_sees_its_url_again(api, inbox):
    url = f"json://ops:{SECRET}@127.0.0.1:{inbox.webhook.port}/ok/token-{SECRET}"
    response = make_channel(api, url)
    assert response.status_code == 201, response.json()
    made = response.json()
    assert made["url"] == f"json://127.0.0.1:{inbox.webhook.port}/…"
    assert made["events"] == ["node.down", "metric.threshold"] and made["enabled"] is True
    for page in (api.get("/api/alert-channels/"), api.get(f"/api/alert-channels/{made['id']}/")):
        assert SECRET not in page.content.decode()
    audit = Event.objects.get(kind=EventKind.ALERT_CHANNEL_CREATED)
    assert "ops" in audit.reason and SECRET not in audit.reason and audit.actor == "root"
    with connection.cursor() as cursor:  # sealed at rest too
        cursor.execute("SELECT url FROM fleet_alertchannel")
        assert SECRET not in cursor.fetchone()[0]
    assert AlertChannel.objects.get().url == url


def test_a_bad_url_is_refused_with_a_400_and_changes_nothing(api, inbox):
    assert make_channel(api, "bogus://x").status_code == 400
    refused = make_channel(api, "json://")
    assert refused.status_code == 400 and "url" in refused.json()
    assert AlertChannel.objects.count() == 0
    made = make_channel(api, inbox.json_url()).json()
    for bad in ({"url": "nope://x"}, {"url": made["url"]}, {"events": ["node.sideways"]}):
        response = api.patch(f"/api/alert-channels/{made['id']}/", bad, format="json")
        assert response.status_code == 400, bad
    channel = AlertChannel.objects.get()
    assert channel.url == inbox.json_url() and channel.events == ["node.down", "metric.threshold"]
    assert Event.objects.filter(kind=EventKind.ALERT_CHANNEL_CHANGED).count() == 0


def test_a_url_can_be_replaced_and_leaving_it_out_keeps_it(api, inbox):
    made = make_channel(api, inbox.json_url("ok/first")).json()
    kept = api.patch(f"/api/alert-channels/{made['id']}/", {"enabled": False}, format="json")
    assert kept.status_code == 200 and AlertChannel.objects.get().url == inbox.json_url("ok/first")
    replaced = api.patch(
        f"/api/alert-channels/{made['id']}/", {"url": inbox.mail_url()}, format="json"
    )
    assert replaced.status_code == 200
    assert replaced.json()["url"] == f"mailto://127.0.0.1:{inbox.smtp_port}/…"
    assert AlertChannel.objects.get().url == inbox.mail_url()
    assert (
        "URL replaced" in Event.objects.filter(kind=EventKind.ALERT_CHANNEL_CHANGED).first().reason
    )


def test_only_admins_manage_channels_and_every_role_reads_alerts(api, viewer, operator, inbox):
    made = make_channel(api, inbox.json_url()).json()
    for user in (viewer, operator):
        client = api_for(user)
        assert client.get("/api/alert-channels/").status_code == 200
        assert client.get("/api/incidents/").status_code == 200
        assert client.get("/api/deliveries/").status_code == 200
        assert make_channel(client, inbox.json_url(), name="mine").status_code == 403
        patch = client.patch(f"/api/alert-channels/{made['id']}/", {"enabled": False})
        assert patch.status_code == 403
        assert client.post(f"/api/alert-channels/{made['id']}/test").status_code == 403
        assert client.delete(f"/api/alert-channels/{made['id']}/").status_code == 403
    assert AlertChannel.objects.get().enabled is True


def test_the_test_button_sends_now_and_answers_with_the_outcome(api, inbox):
    good = make_channel(api, inbox.json_url()).json()
    sent = api.post(f"/api/alert-channels/{good['id']}/test")
    assert sent.status_code == 200, sent.json()
    assert (sent.json()["outcome"], sent.json()["error"]) == ("sent", "")
    [body] = inbox.webhook.bodies()
    assert body["title"] == "[Fleet] Test message to ops"
    down = make_channel(api, inbox.json_url("fail/hook"), name="down").json()
    failed = api.post(f"/api/alert-channels/{down['id']}/test").json()
    assert failed["outcome"] == "failed" and "500" in failed["error"]
    mail = make_channel(api, inbox.mail_url(), name="mail").json()
    assert api.post(f"/api/alert-channels/{mail['id']}/test").json()["outcome"] == "sent"
    assert inbox.mailbox.subjects() == ["[Fleet] Test message to mail"]
    assert Delivery.objects.count() == 3


# Event ids from 1 in each test, as on a fresh database: PostgreSQL's sequences are not
# rolled back with a test, and a gap after the cursor is waited on as a transaction that has
# not committed yet (GAP_WAIT).
@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_threshold_events_open_one_incident_and_resolve_it_after_the_quiet_period(api, inbox):
    """The contract with the metrics: metric.threshold_exceeded (service or node, the rule in
    `new`) opens; metric.threshold_cleared resolves once clear for FLEET_ALERT_QUIET."""
    channel = AlertChannel.objects.create(
        name="ops", url=inbox.json_url(), events=["metric.threshold"]
    )
    incidents.process_events()  # the cursor starts at the newest event
    rule = "cpu above 80% for 5 min"
    for _ in range(3):  # a flapping threshold: one incident
        Event.objects.record(
            EventKind.METRIC_THRESHOLD_EXCEEDED, service="web", new=rule, reason="cpu 93%"
        )
        incidents.process_events()
        Event.objects.record(
            EventKind.METRIC_THRESHOLD_CLEARED, service="web", new=rule, reason="cpu 12%"
        )
        incidents.process_events()
    incident = Incident.objects.get()
    assert (incident.kind, incident.subject, incident.state) == (
        "metric.threshold",
        f"web/{rule}",
        "resolving",
    )
    assert incident.occurrences == 3
    incidents.check_conditions()
    assert Incident.objects.get().state == "resolving"  # the quiet period is not over
    incidents.check_conditions(now=timezone.now() + timedelta(seconds=settings.FLEET_ALERT_QUIET))
    incident = Incident.objects.get()
    assert incident.state == "resolved" and incident.resolved_at is not None
    alerts = list(Alert.objects.order_by("id"))
    assert [a.phase for a in alerts] == ["opened", "resolved"]
    assert alerts[0].title == f"[Fleet] web/{rule} crossed its threshold"
    assert "3 times" in alerts[1].body
    for alert in alerts:  # what the worker does for each (alert, channel)
        delivery.deliver(alert.pk, channel.pk)
    titles = [b["title"] for b in inbox.webhook.bodies()]
    assert titles == [alerts[0].title, alerts[1].title]
    listed = api.get("/api/incidents/?state=resolved").json()["results"]
    assert [i["subject"] for i in listed] == [f"web/{rule}"]
    assert [a["phase"] for a in listed[0]["alerts"]] == ["resolved", "opened"]
    sent = api.get(f"/api/deliveries/?incident={incident.pk}").json()["results"]
    assert [d["outcome"] for d in sent] == ["sent", "sent"] and sent[0]["channel"] == "ops"


def test_a_delivery_that_fails_is_recorded_per_attempt_and_retried_a_bounded_number_of_times(inbox):
    channel = AlertChannel.objects.create(
        name="down", url=inbox.json_url("fail/x"), events=["node.down"]
    )
    alert = Alert.objects.create(phase="opened", topics=["node.down"], title="t", body="b")
    for attempt in range(1, settings.FLEET_ALERT_RETRIES + 2):
        row = delivery.deliver(alert.pk, channel.pk, attempt)
        assert row.outcome == "failed" and "500" in row.error
    assert row.final is True
    assert delivery.deliver(alert.pk, channel.pk, 1) is None  # an attempt run twice does nothing
    assert Delivery.objects.count() == settings.FLEET_ALERT_RETRIES + 1
    assert len(inbox.webhook.bodies("/fail")) == settings.FLEET_ALERT_RETRIES + 1


def test_a_slow_channel_is_given_up_on_within_the_timeout(inbox):
    channel = AlertChannel.objects.create(name="slow", url=inbox.json_url("slow/x"))
    alert = Alert.objects.create(phase="opened", topics=["node.down"], title="t", body="b")
    started = timezone.now()
    row = delivery.deliver(alert.pk, channel.pk, settings.FLEET_ALERT_RETRIES + 1)
    took = (timezone.now() - started).total_seconds()
    assert row.outcome == "failed" and row.final
    assert took < settings.FLEET_ALERT_TIMEOUT * 2 + 1, took


@pytest.mark.parametrize("position", ["garbage", "\x00", "1e9", "99999999999999999999"])
@pytest.mark.parametrize("path", ["/api/incidents/", "/api/deliveries/"])
def test_a_forged_cursor_is_a_404_not_a_crash(api, path, position):
    import base64
    from urllib.parse import urlencode

    cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()
    response = api.get(path, {"cursor": cursor})
    assert response.status_code == 404
    assert api.get(path, {"incident": "99999999999999999999999"}).status_code in (200, 400)


def test_a_quiet_tick_costs_one_query(django_assert_num_queries):
    Event.objects.record(EventKind.SERVICE_SCALED, service="web", old="1", new="2")
    incidents.process_events()
    with django_assert_num_queries(1):
        assert incidents.process_events() == 0


def test_an_attempt_a_dead_worker_left_sending_is_failed_and_tried_again(inbox):
    channel = AlertChannel.objects.create(name="ops", url=inbox.json_url(), events=["node.down"])
    alert = Alert.objects.create(phase="opened", topics=["node.down"], title="t", body="b")
    long_ago = timezone.now() - timedelta(minutes=5)
    Delivery.objects.create(alert=alert, channel=channel, attempt=1, started_at=long_ago)
    Delivery.objects.create(alert=alert, channel=channel, attempt=9, started_at=timezone.now())
    incidents.check_conditions()
    rows = dict(Delivery.objects.values_list("attempt", "outcome"))
    assert rows == {1: "failed", 9: "sending"}  # the recent one may still be running
    assert Delivery.objects.get(attempt=1).error == "the worker stopped during this attempt"
    assert delivery.deliver(alert.pk, channel.pk, 2).outcome == "sent"  # what the queue runs
