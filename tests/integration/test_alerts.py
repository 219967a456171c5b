# ruff: noqa: F811
"""Alerts end to end: real failures on the lab, the real worker and beat, delivered to a
real JSON webhook and a real SMTP server, each incident told once and resolved once."""

import time
from collections import Counter

import pytest

from fleet.models import Incident

# The receivers' fixtures, imported to be used by name: pytest passes them as arguments.
from tests.integration.receivers import inbox, receivers  # noqa: F401
from tests.integration.test_services_deploy import wait_running
from tests.system import wait_for

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

QUIET = 5


@pytest.fixture
def process_env(process_env):
    """The quiet period is what these tests wait out before each resolution: 5 s instead of
    the default 60 keeps them fast (the rules' unit tests hold the grouping at any length)."""
    return {**process_env, "FLEET_ALERT_QUIET": str(QUIET)}


def subscribe(api, inbox):
    """A webhook and a mailbox that receive every alert."""
    everything = [
        "node.down",
        "node.up",
        "service.degraded",
        "service.recovered",
        "replica.crash_looping",
        "deployment.failed",
        "deployment.rolled_back",
        "metric.threshold",
    ]
    for name, url in (("hook", inbox.json_url()), ("mail", inbox.mail_url())):
        body = {"name": name, "url": url, "events": everything}
        assert api.post("/api/alert-channels/", body, format="json").status_code == 201


def received(inbox, *titles):
    """Whether both receivers have every one of these titles."""
    hooked, mailed = inbox.titles()
    return all(t in hooked and t in mailed for t in titles)


def assert_told_once_each(inbox):
    """Every incident made one alert and one resolution, and each reached both receivers
    exactly once; return the incidents' (kind, subject)."""
    incidents = list(Incident.objects.order_by("id"))
    for incident in incidents:
        phases = sorted(incident.alerts.values_list("phase", flat=True))
        assert (incident.state, phases) == ("resolved", ["opened", "resolved"]), incident
    hooked, mailed = inbox.titles()
    assert Counter(hooked) == Counter(mailed)
    assert all(count == 1 for count in Counter(hooked).values()), hooked
    assert len(hooked) == 2 * len(incidents), hooked
    return {(i.kind, i.subject) for i in incidents}


def test_a_node_killed_and_brought_back_makes_one_alert_and_one_resolution(fleet, inbox):
    subscribe(fleet.api, inbox)
    fleet.lab.kill_node("lab-2")
    try:
        wait_for(
            lambda: received(inbox, "[Fleet] node lab-2 is down"), 40, message="the down alert"
        )
    finally:
        fleet.lab.start_node("lab-2")
    resolved = "[Fleet] Resolved: node lab-2 is up again"
    wait_for(lambda: received(inbox, resolved), 40, message="the resolution")
    time.sleep(2)  # anything more would be one message too many
    assert assert_told_once_each(inbox) == {("node.down", "lab-2")}
    [mail] = [m for m in inbox.mailbox.messages if m["Subject"] == resolved]
    assert "from" in mail.get_payload()[0].get_payload(decode=True).decode()


def test_a_crash_loop_and_failed_deploys_each_make_one_alert_and_one_resolution(fleet, inbox):
    """A service that crash-loops from its first revision (that deploy fails, its replica
    loops), and a healthy service whose new image is missing (rolled back); both fixed by
    a deploy that works."""
    subscribe(fleet.api, inbox)
    fleet.create("web", replicas=1, update={"monitor": 1})
    created = fleet.create("crash", replicas=1, command=["sh", "-c", "exit 3"])
    wait_running(fleet, "web", 1)
    missing = {"image": fleet.images["demo_v1"].replace(":1", ":404")}
    bad = fleet.api.post("/api/services/web/deploy", missing, format="json").json()
    fleet.wait_deployment(created["current_deployment"]["id"], "failed")
    fleet.wait_deployment(bad["id"], "rolled_back")
    wait_for(
        lambda: received(
            inbox,
            "[Fleet] deployment of crash failed",
            "[Fleet] service crash has a replica crash-looping",
            "[Fleet] deployment of web failed and was rolled back",
        ),
        40,
        message="the three alerts",
    )
    fix = fleet.api.post("/api/services/crash/deploy", {"command": []}, format="json").json()
    good = {"image": fleet.images["demo_v2"]}
    retry = fleet.api.post("/api/services/web/deploy", good, format="json").json()
    fleet.wait_deployment(fix["id"], "succeeded")
    fleet.wait_deployment(retry["id"], "succeeded")
    wait_for(
        lambda: received(
            inbox,
            "[Fleet] Resolved: deployment of crash succeeded",
            "[Fleet] Resolved: service crash is no longer crash-looping",
            "[Fleet] Resolved: deployment of web succeeded",
        ),
        40,
        message="the three resolutions",
    )
    time.sleep(2)
    told = assert_told_once_each(inbox)
    assert {
        ("deployment.failed", "crash"),
        ("replica.crash_looping", "crash"),
        ("deployment.failed", "web"),
    } <= told
    # A degraded incident may open too if the crash loop lasted past FLEET_ALERT_DEGRADED_AFTER
    # on a slow run; nothing else may.
    assert told - {("service.degraded", "crash")} == {
        ("deployment.failed", "crash"),
        ("replica.crash_looping", "crash"),
        ("deployment.failed", "web"),
    }
