# ruff: noqa: F811
"""The alerts pages: every role reads incidents and deliveries, admins manage channels, and
a channel's URL never appears on a page once saved."""

import pytest

from dashboard import fragments
from fleet.models import Alert, AlertChannel, Delivery, Event, EventKind, Incident

# The receivers' fixtures, imported to be used by name: pytest passes them as arguments.
from tests.integration.receivers import inbox, receivers  # noqa: F401

pytestmark = pytest.mark.django_db

SECRET = "hunter22-s3cr3t"


@pytest.fixture
def incident():
    found = Incident.objects.create(
        kind="node.down", subject="lab-2", node_name="lab-2", state="open", summary="no answer"
    )
    alert = Alert.objects.create(
        incident=found,
        phase="opened",
        topics=["node.down"],
        title="[Fleet] node lab-2 is down",
        body="b",
    )
    channel = AlertChannel.objects.create(name="ops", url=f"json://u:{SECRET}@127.0.0.1:9/x")
    Delivery.objects.create(
        alert=alert, channel=channel, outcome="failed", error="Connection error"
    )
    return found


def test_the_alerts_page_shows_incidents_deliveries_and_redacted_channels(client, viewer, incident):
    client.force_login(viewer)
    page = client.get("/alerts/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "lab-2" in html and "[Fleet] node lab-2 is down" in html and "Connection error" in html
    assert "json://127.0.0.1:9/…" in html and SECRET not in html
    assert "Manage channels" not in html and "Admins manage the channels." in html


def test_only_admins_reach_the_channel_pages(client, viewer, operator, incident):
    channel = AlertChannel.objects.get()
    for user in (viewer, operator):
        client.force_login(user)
        for url in ("/alerts/channels/", f"/alerts/channels/{channel.pk}/"):
            assert client.get(url).status_code == 403
        assert client.post(f"/alerts/channels/{channel.pk}/test/").status_code == 403
        refused = client.post(f"/alerts/channels/{channel.pk}/", {"delete": "1"})
        assert refused.status_code == 403
    assert AlertChannel.objects.count() == 1


def test_the_overview_counts_open_incidents_in_a_tile_that_links_to_the_alerts(
    client, viewer, incident
):
    client.force_login(viewer)
    html = client.get("/").content.decode()
    assert 'data-live="incidents"' in html and 'href="/alerts/"' in html
    assert '<span class="n">1</span> incident open' in html
    data, tile = fragments.incidents_tile("open")
    assert data == {"open": 1} and "1</span> incident open" in tile
    Incident.objects.update(state="resolved")
    assert fragments.incidents_tile("open")[0] == {"open": 0}


def test_an_admin_adds_a_channel_on_the_page_and_never_sees_its_url_again(
    client, admin_user, inbox
):
    client.force_login(admin_user)
    url = f"json://ops:{SECRET}@127.0.0.1:{inbox.webhook.port}/ok/{SECRET}"
    form = {"name": "ops", "url": url, "events": ["node.down", "node.up"], "enabled": "on"}
    assert client.post("/alerts/channels/", form).status_code == 302
    channel = AlertChannel.objects.get()
    assert (channel.url, channel.events, channel.enabled) == (url, ["node.down", "node.up"], True)
    for page in ("/alerts/channels/", f"/alerts/channels/{channel.pk}/", "/alerts/", "/events/"):
        html = client.get(page).content.decode()
        assert SECRET not in html, page
    assert (
        f"json://127.0.0.1:{inbox.webhook.port}/…"
        in client.get("/alerts/channels/").content.decode()
    )
    tested = client.post(f"/alerts/channels/{channel.pk}/test/", follow=True).content.decode()
    assert "Test message sent to ops." in tested
    assert [b["title"] for b in inbox.webhook.bodies()] == ["[Fleet] Test message to ops"]


def test_a_bad_url_on_the_page_is_refused_and_changes_nothing(client, admin_user, inbox):
    client.force_login(admin_user)
    refused = client.post("/alerts/channels/", {"name": "ops", "url": "bogus://x", "events": []})
    assert refused.status_code == 400
    assert "Unknown scheme" in refused.content.decode()
    assert AlertChannel.objects.count() == 0
    channel = AlertChannel.objects.create(name="ops", url=inbox.json_url())
    edit = {"name": "ops", "url": "json://", "events": ["node.down"]}
    assert client.post(f"/alerts/channels/{channel.pk}/", edit).status_code == 400
    kept = {"name": "ops", "url": "", "events": ["node.down"]}
    assert client.post(f"/alerts/channels/{channel.pk}/", kept).status_code == 302
    channel.refresh_from_db()
    assert (channel.url, channel.events, channel.enabled) == (
        inbox.json_url(),
        ["node.down"],
        False,
    )
    assert Event.objects.filter(kind=EventKind.ALERT_CHANNEL_CHANGED).count() == 1
    assert client.post(f"/alerts/channels/{channel.pk}/", {"delete": "1"}).status_code == 302
    assert AlertChannel.objects.count() == 0


def test_the_admin_never_shows_a_channel_url_and_refuses_a_bad_one(client, admin_user, viewer):
    channel = AlertChannel.objects.create(name="ops", url=f"json://u:{SECRET}@127.0.0.1:9/x")
    change = f"/admin/fleet/alertchannel/{channel.pk}/change/"
    for user in (admin_user, viewer):  # the viewer's page is read-only
        client.force_login(user)
        for page in ("/admin/fleet/alertchannel/", change):
            response = client.get(page)
            assert response.status_code == 200, page
            html = response.content.decode()
            assert SECRET not in html and "json://127.0.0.1:9/…" in html, page
    client.force_login(admin_user)
    bad = {"name": "ops", "url": "bogus://x", "events": ["node.down"], "enabled": "on"}
    refused = client.post(change, bad)
    assert refused.status_code == 200 and "Unknown scheme" in refused.content.decode()
    kept = {"name": "ops2", "url": "", "events": ["node.down"], "enabled": "on"}
    assert client.post(change, kept).status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.url) == ("ops2", f"json://u:{SECRET}@127.0.0.1:9/x")
    audit = Event.objects.get(kind=EventKind.ALERT_CHANNEL_CHANGED)
    assert SECRET not in audit.reason and audit.via == "admin"


def test_the_alert_pages_keep_the_strict_policy(admin_client, incident):
    from tests.integration.test_csp import STRICT, inline_code, policy

    channel = AlertChannel.objects.get()
    for path in (
        "/alerts/",
        "/alerts/channels/",
        f"/alerts/channels/{channel.pk}/",
        "/admin/fleet/alertchannel/add/",
    ):
        response = admin_client.get(path)
        assert response.status_code == 200, path
        assert policy(response) == STRICT
        assert inline_code(response.content.decode()) == [], path


def test_the_socket_carries_incidents_deliveries_and_the_tile_as_the_pages_render_them(incident):
    from fleet import live

    row = live.envelope("incident", incident.pk)
    assert row["data"]["subject"] == "lab-2" and 'data-live="incident"' in row["html"]
    tile = live.envelope("incidents", "open")
    assert tile["data"] == {"open": 1} and 'data-live="incidents"' in tile["html"]
    sent = live.envelope("delivery", Delivery.objects.get().pk)
    assert sent["data"]["channel"] == "ops" and SECRET not in str(sent)
    Incident.objects.update(state="pending")  # not told yet: not shown
    assert live.envelope("incident", incident.pk)["data"] is None
