"""The whole system served on localhost, and a real Chromium (Debian's) driving it."""

import socket

import pytest

from tests.integration.conftest import (  # noqa: F401 - fixtures shared with the integration tests
    ROOT,
    _start,
    _stop,
    beat_env,
    celery_beat,
    celery_worker,
    fleet,
    lab,
    lab_nodes,
    process_env,
    redis_server,
    wait_for,
    watch_process,
)

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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(process_env, celery_worker, celery_beat, watch_process):  # noqa: F811
    """Fleet served by daphne on a free localhost port, with worker, beat and watch."""
    port = free_port()
    proc = _start(
        "web",
        ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "fleet.asgi:application"],
        process_env,
    )
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_for(up, 30, message="daphne to listen")
    yield url
    _stop([proc])


@pytest.fixture
def browser(monkeypatch):
    """Chromium for one test. Playwright's sync API keeps an event loop in this thread while
    it runs, next to which Django refuses the test's own plain ORM calls unless told they
    are safe; both end with the test."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()


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
