# ruff: noqa: F811
"""Alerts end to end: real failures on the lab, the real workers and beat, delivered to a
real JSON webhook and a real SMTP server, each incident told once and resolved once, when
Redis was away as the alert was made and when converges fill the worker."""

import time
from collections import Counter

import pytest

from fleet.alerts import incidents
from fleet.models import Alert, Deployment, Event, EventKind, Incident, Node
from tests.integration.faults import hanging_registry

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
    # On a database made empty for this test the processor's cursor is made at its first
    # tick, at the newest event then (history is not news): an event the test records
    # before that tick would count as history. Wait for the cursor and the news so far.
    wait_for(lambda: not incidents.anything_new(), 10, message="the processor to catch up")


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


def test_a_node_that_goes_down_while_redis_is_stopped_makes_one_alert_and_one_resolution(
    fleet, inbox, redis_server, watch_process, alerts_worker
):
    """Redis stops, then a node goes down. The watch, which needs no broker, marks it down;
    a processor tick under way as Redis went makes the alert, which the broker cannot take
    (the test's own process runs that tick: no worker can be handed one while Redis is
    down). Once Redis is back the sweep hands it over: it arrives once, as does the
    resolution."""
    subscribe(fleet.api, inbox)
    redis_server.stop()
    try:
        fleet.lab.kill_node("lab-2")
        wait_for(
            lambda: Node.objects.filter(name="lab-2", status="down").exists(),
            30,
            message="the watch to mark lab-2 down",
        )
        incidents.process_events()
        assert Alert.objects.filter(phase="opened").count() == 1  # made; not yet sent
    finally:
        redis_server.start()
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


def test_an_alert_does_not_wait_behind_a_backlog_of_converges(
    fleet, inbox, redis_server, alerts_worker
):
    """Converges whose pulls hang (until the engines' TLS handshake timeout, 10 s) take
    every slot of the worker and more wait on the default queue; an event's alert arrives
    before any of them has ended, through the alerts' own queue and worker."""
    subscribe(fleet.api, inbox)
    names = [f"stall-{n}" for n in range(10)]
    stalled = Deployment.objects.filter(service__name__in=names)
    with hanging_registry(fleet.lab, port=5003) as silent:
        for name in names:
            fleet.create(name, image=f"{silent}/fleet/demo:1", replicas=1, update={"monitor": 0})
        wait_for(
            lambda: redis_server.client.llen("celery") >= 2,
            30,
            message="converges waiting on the default queue",
        )
        started = time.monotonic()
        Event.objects.record(EventKind.DEPLOYMENT_FAILED, service="web", reason="broken")
        wait_for(
            lambda: received(inbox, "[Fleet] deployment of web failed"), 30, message="the alert"
        )
        took = time.monotonic() - started
        ended = stalled.filter(status__in=["failed", "rolled_back"]).count()
        print(f"alert received {took:.1f} s after its event; {ended} of the converges had ended")
        # A slot of the worker is freed only by a converge that ended: none had.
        assert ended == 0, f"the alert came {took:.1f} s after its event, behind the converges"
        for name in names:
            assert fleet.api.delete(f"/api/services/{name}/").status_code in (202, 204)
    # The converges end once the pulls fail, and give their pull slots back (a worker killed
    # with its pulls still hanging would hold them from the next test).
    wait_for(lambda: not redis_server.client.keys("fleet:pulls:*"), 90, message="the pulls to end")


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
