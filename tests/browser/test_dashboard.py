"""The dashboard in a real browser against the whole system: live without reloads."""

import pytest

from tests.browser.conftest import screenshot, wait_for
from tests.integration.test_services_deploy import HEALTH

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

RUNNING = ".replica.rep-running"


def running_replicas(page):
    return page.locator(f"{RUNNING}:not(.health-starting)").count()


def open_service(page, name):
    page.goto(f"{page.base}/services/{name}/")
    page.wait_for_function("() => document.body.dataset.live === 'on'")


def test_an_operator_creates_a_service_and_scales_it_without_a_reload(page, fleet):
    page.click("summary:has-text('New service')")
    page.fill("#new-name", "web")
    page.fill("#new-replicas", "2")
    page.fill("#new-port", "80")
    page.click("form[data-form=create] button[type=submit]")
    page.wait_for_url(f"{page.base}/services/web/")
    page.wait_for_function("() => document.body.dataset.live === 'on'")
    wait_for(lambda: running_replicas(page) == 2, 60, message="two replicas on the page")

    page.evaluate("window.sameDocument = true")
    page.click("button[data-act=scale-up]")
    page.wait_for_selector("tr[data-live=service][data-replicas='3']")
    wait_for(lambda: running_replicas(page) == 3, 60, message="a third replica on the page")
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"
    assert page.locator("#replica-count").input_value() == "3"
    assert fleet.count("web") == 3
    screenshot(page, "service")
    page.goto(f"{page.base}/")
    page.wait_for_selector("#service-web")
    screenshot(page, "overview")


def test_a_killed_container_turns_red_and_is_replaced(page, fleet):
    fleet.create("web", replicas=2, ports=[{"container": 80}], update={"monitor": 0})
    open_service(page, "web")
    wait_for(lambda: running_replicas(page) == 2, 60, message="two running replicas")
    # Remember every state a replica element shows, however briefly.
    page.evaluate(
        """() => {
        window.seen = [];
        new MutationObserver(() => document.querySelectorAll('.replica').forEach(
            el => window.seen.push(el.className))).observe(document.body,
            {subtree: true, childList: true, attributes: true});
    }"""
    )
    victim = next(c for cs in fleet.containers("web").values() for c in cs)
    victim.kill()
    page.wait_for_function("() => window.seen.some(c => c.includes('rep-exited'))")
    wait_for(
        lambda: (
            running_replicas(page) == 2
            and victim.id not in {c.id for cs in fleet.containers("web").values() for c in cs}
        ),
        60,
        message="the killed replica to be replaced",
    )


def test_a_failing_deploy_shows_as_rolled_back(page, fleet):
    fleet.create(
        "web", replicas=2, healthcheck=HEALTH, ports=[{"container": 80}], update={"monitor": 1}
    )
    open_service(page, "web")
    wait_for(lambda: running_replicas(page) == 2, 60, message="two healthy replicas")
    page.fill("#deploy-image", fleet.images["demo_v1"].replace(":1", ":404"))
    page.click("form[data-form=deploy] button[type=submit]")
    page.wait_for_selector("#notice:has-text('accepted')")
    row = page.wait_for_selector("tr[data-live=deployment]:has(.dep-rolled_back)", timeout=60_000)
    assert "cannot pull" in row.inner_text()
    assert running_replicas(page) == 2


def test_a_bad_deploy_shows_its_error_in_the_page(page, fleet):
    fleet.create("web", replicas=1, update={"monitor": 0})
    open_service(page, "web")
    page.fill("#deploy-image", "Not An Image")
    page.click("form[data-form=deploy] button[type=submit]")
    page.wait_for_selector("#notice.error")
    assert "image" in page.inner_text("#notice")


def test_the_log_tail_shows_new_lines(page, fleet):
    loop = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.3; done"
    fleet.create("talker", replicas=1, command=["sh", "-c", loop], update={"monitor": 0})
    open_service(page, "talker")
    wait_for(lambda: running_replicas(page) == 1, 60, message="the talker to run")
    page.click("button[data-act=logs]")
    page.wait_for_selector("#log-lines:has-text('line')")
    first = page.inner_text("#log-lines").count("line ")
    # A line every 0.3 s, a batch at most every 0.5 s: a dozen more lines take more batches
    # than the server sends ahead (dashboard.log_tail.WINDOW), so the page acknowledges them.
    wait_for(
        lambda: page.inner_text("#log-lines").count("line ") > first + 12,
        20,
        message="new log lines to arrive",
    )


def test_an_operator_drains_and_activates_a_node_in_place(page, fleet):
    from fleet.models import Node

    page.goto(f"{page.base}/nodes/lab-1/")
    page.wait_for_function("() => document.body.dataset.live === 'on'")
    page.evaluate("window.sameDocument = true")
    page.click("button[name=availability][value=drain]")
    page.wait_for_selector("tr#node-lab-1 td:nth-child(3):has-text('drain')")
    # The summary below the row is kept live too.
    page.wait_for_selector("#node-summary-lab-1 dd:nth-of-type(2):has-text('drain')")
    assert page.is_disabled("button[name=availability][value=drain]")
    assert Node.objects.get(name="lab-1").availability == "drain"
    page.click("button[name=availability][value=active]")
    page.wait_for_selector("tr#node-lab-1 td:nth-child(3):has-text('active')")
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"
    assert Node.objects.get(name="lab-1").availability == "active"
    # Held out of placement after flapping: the hold shows up live, and is lifted in place.
    from datetime import timedelta

    from django.utils import timezone

    from fleet import live

    until = timezone.now() + timedelta(minutes=10)
    Node.objects.filter(name="lab-1").update(held_until=until, hold_reason="went down 4 times")
    live.broadcast("node", "lab-1")
    page.click("#node-summary-lab-1 button[data-act=release-hold]")
    page.wait_for_selector("#node-summary-lab-1 dt:has-text('Held')", state="detached")
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"
    assert not Node.objects.get(name="lab-1").held


def test_a_replica_restarts_from_its_node_page(page, fleet):
    """The node page lists replicas of any service: each restart button knows its own."""
    from fleet.models import Replica

    fleet.create("web", replicas=3, update={"monitor": 0})
    fleet.converged("web", 3)
    replica = Replica.objects.get(service__name="web", node__name="lab-2")
    page.goto(f"{page.base}/nodes/lab-2/")
    page.wait_for_function("() => document.body.dataset.live === 'on'")
    page.click(f"#replica-{replica.pk} button[data-act=restart]")
    page.wait_for_selector("#notice:has-text('accepted')")
    wait_for(
        lambda: (
            Replica.objects.filter(pk=replica.pk)
            .exclude(container_id__in=["", replica.container_id])
            .filter(state="running")
            .exists()
        ),
        60,
        message="slot's new container to run",
    )
    fleet.converged("web", 3)


def test_a_feed_folds_repeats_as_they_arrive(page, fleet):
    from fleet.models import Event, EventKind

    fleet.create("web", replicas=0)
    open_service(page, "web")
    for _ in range(3):
        Event.objects.record(EventKind.REPLICA_DIED, service="web", reason="slot 9 exit code 3")
    line = "ol.events li:has-text('slot 9 exit code 3')"
    page.wait_for_selector(f"{line}:has-text('3 times in under a minute')")
    assert page.locator(line).count() == 1
