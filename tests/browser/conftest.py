"""The whole system served on localhost, and a real Chromium (Debian's) driving it."""

import os

import pytest

from tests.system import ROOT, wait_for  # noqa: F401 - wait_for: the browser tests import it here

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "var" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    """Chromium for a module's tests (each gets a context of its own: `page`). Playwright's
    sync API keeps an event loop in this thread while it runs, next to which Django refuses
    the tests' own plain ORM calls unless told they are safe; both end with the module."""
    from playwright.sync_api import sync_playwright

    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()
    if before is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE")
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def page(browser, server, admin_user):
    """A logged-in page, through the real login form."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{server}/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "root-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/")
    # Predicates are functions, not expressions: Playwright evals an expression while it
    # polls, which the pages' Content-Security-Policy (no 'unsafe-eval') refuses.
    page.wait_for_function("() => document.body.dataset.live === 'on'")
    page.base = server
    yield page
    context.close()


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
