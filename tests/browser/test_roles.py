"""Roles and the audit trail as a person meets them in the browser."""

import pytest

from tests.browser.conftest import screenshot
from tests.conftest import user_with_role

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def log_in(browser, server, username):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{server}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"{username}-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/")
    return page


def test_a_viewer_sees_the_fleet_live_but_no_controls(browser, server, fleet, api):
    user_with_role("vera", "viewer")
    fleet.create("web", replicas=1, secrets={"TOKEN": "never-on-a-page-1234"})
    page = log_in(browser, server, "vera")
    page.locator("body[data-live=on]").wait_for(state="attached")
    assert page.locator("#service-web").is_visible()
    assert not page.locator("details.needs-change").is_visible()  # no new-service form
    page.goto(f"{server}/services/web/")
    page.locator("body[data-live=on]").wait_for(state="attached")
    assert not page.get_by_role("button", name="Deploy").is_visible()
    assert not page.locator("section[aria-labelledby=scale-heading]").is_visible()
    assert "never-on-a-page-1234" not in page.content()
    # Still live: a change made by someone else arrives without a reload.
    api.post("/api/services/web/scale", {"replicas": 2}, format="json")
    page.locator("[data-live=replica]").nth(1).wait_for()
    screenshot(page, "viewer-service")


def test_a_user_without_a_role_is_told_so(browser, server, db):
    user_with_role("nora", None)
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server}/login/")
    page.fill("#id_username", "nora")
    page.fill("#id_password", "nora-pass-123")
    page.click("button[type=submit]")
    page.wait_for_selector("text=has no role")
    assert "Not allowed" in page.title()


def test_the_events_page_follows_matching_events_live(browser, server, fleet, api):
    user_with_role("vera", "viewer")
    page = log_in(browser, server, "vera")
    page.goto(f"{server}/events/?actor=root")
    page.locator("body[data-live=on]").wait_for(state="attached")
    fleet.create("audited", replicas=1)
    row = page.locator("ol.events li[data-live=event]", has_text="service.created")
    row.wait_for()
    assert "by root" in row.inner_text()
    # Events by others (the system starting the replica) do not join this filtered list.
    page.wait_for_timeout(1500)
    assert page.locator("ol.events li", has_text="replica.started").count() == 0
    screenshot(page, "events-filtered")
