"""The README's screenshots, taken again from a real Fleet: `.venv/bin/python -m docs.screenshots`.

Brings up the stack the benchmarks use (`bench.harness.Stack`: its own Redis, lab,
database, Celery worker and beat, `manage.py watch` and daphne, at Fleet's default
settings) plus the ingress (HAProxy), logs in as `admin` through the login form in
Debian's Chromium (driven by Playwright, as the browser tests do), deploys a small
fleet through the REST API as that admin, sends some traffic through the ingress while
the metrics sampler takes a few rounds, and saves:

    docs/overview.png             the overview, 1440 px wide, light scheme, full page
    docs/service.png              the `web` service page, 1440 px, light, full page
    docs/overview-phone-dark.png  the overview on a phone (390 px), dark scheme

Everything it started is stopped at the end, also on an error, Ctrl-C or SIGTERM. Not part of
`make test`. It keeps apart from `make run`, the tests and the benchmarks: lab "doc"
on 10.250.6.0/24, Redis on 6389, var/screenshots.sqlite3, logs in var/screenshots-logs;
SCREENSHOTS_LAB_NAME, SCREENSHOTS_LAB_SUBNET and SCREENSHOTS_REDIS_URL move it.
"""

import argparse
import contextlib
import http.client
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import harness
from lab import Lab
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

DOCS = Path(__file__).resolve().parent
ADMIN, PASSWORD = "admin", "screenshots-pass-123"
HEALTHCHECK = {
    "command": ["CMD", "wget", "-q", "-O", "-", "http://127.0.0.1/health"],
    "interval": 2,
    "timeout": 2,
    "retries": 3,
}
SERVICE_WAIT = 180  # seconds for a deployment to finish on a busy 2-core machine


def configure():
    """Point the bench harness at this script's own lab, Redis, database and logs."""
    harness.ENV.update(
        REDIS_URL=os.environ.get("SCREENSHOTS_REDIS_URL") or "redis://127.0.0.1:6389/0",
        DATABASE_URL=f"sqlite:///{harness.ROOT / 'var' / 'screenshots.sqlite3'}",
        FLEET_LAB_NAME=os.environ.get("SCREENSHOTS_LAB_NAME") or "doc",
        FLEET_LAB_SUBNET=os.environ.get("SCREENSHOTS_LAB_SUBNET") or "10.250.6.0/24",
    )
    harness.LOGS = harness.ROOT / "var" / "screenshots-logs"


def say(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Api:
    """The REST API as the logged-in admin: the browser context's session and CSRF cookie,
    so the events read "by admin" as they would after clicks on the pages."""

    def __init__(self, context, base):
        self.request, self.base = context.request, base
        self.csrf = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")

    def call(self, method, path, body=None):
        response = self.request.fetch(
            self.base + path,
            method=method,
            data=body,
            headers={"X-CSRFToken": self.csrf, "Referer": self.base + "/"},
        )
        if not response.ok:
            raise RuntimeError(f"{method} {path}: {response.status} {response.text()[:500]}")
        return response.json() if response.text() else None

    def sampled(self, name):
        """How many rounds of the service's usage the last hour holds."""
        body = self.call("GET", f"/api/services/{name}/metrics/")
        totals = body["total"].values()
        return sum(any(v[i] is not None for v in totals) for i in range(len(body["times"])))

    def settled(self, name, timeout=SERVICE_WAIT):
        """Wait until the service's current deployment succeeded and every replica serves."""

        def done():
            service = self.call("GET", f"/api/services/{name}/")
            current = service["current_deployment"] or {}
            if current.get("status") in ("failed", "rolled_back"):
                raise RuntimeError(f"{name}: deployment {current}")
            return current.get("status") == "succeeded" and service["status"] == "running"

        harness.wait_for(done, timeout, f"{name} to be running", interval=0.5)


def build_fleet(api, images):
    """Three services in three shapes: routed with a health check and a finished update,
    a second routed one, and one scaled to nothing."""
    demo1, demo2 = images["demo_v1"], images["demo_v2"]
    api.call(
        "POST",
        "/api/services/",
        {
            "name": "web",
            "image": demo1,
            "replicas": 3,
            "ports": [{"container": 80}],
            "healthcheck": HEALTHCHECK,
            "resources": {"cpus": 0.25, "memory_bytes": 64 << 20},
            "ingress": {"host": "web.example.com", "port": 80},
        },
    )
    api.call(
        "POST",
        "/api/services/",
        {
            "name": "api",
            "image": demo1,
            "replicas": 2,
            "ports": [{"container": 80}],
            "healthcheck": HEALTHCHECK,
            "ingress": {"host": "web.example.com", "port": 80, "path": "/api/"},
        },
    )
    api.call("POST", "/api/services/", {"name": "reports", "image": demo1, "replicas": 1})
    for name in ("web", "api", "reports"):
        api.settled(name)
    say("services running; web rolls out demo:2, reports scales to 0")
    api.call("POST", "/api/services/web/deploy", {"image": demo2})
    api.call("POST", "/api/services/reports/scale", {"replicas": 0})
    api.settled("web")
    api.settled("reports")
    api.call("POST", "/api/services/web/image-check")


class Traffic(threading.Thread):
    """A few requests a second through the ingress, so the charts show the services at work."""

    def __init__(self, bind):
        super().__init__(daemon=True)
        self.bind, self.stopping, self.sent = bind, threading.Event(), 0

    def run(self):
        host, port = self.bind.rsplit(":", 1)
        paths = ["/", "/", "/", "/api/"]
        while not self.stopping.wait(0.05):
            connection = http.client.HTTPConnection(host, int(port), timeout=2)
            with contextlib.suppress(OSError, http.client.HTTPException):
                path = paths[self.sent % len(paths)]
                connection.request("GET", path, headers={"Host": "web.example.com"})
                connection.getresponse().read()
            connection.close()
            self.sent += 1

    def stop(self):
        self.stopping.set()
        self.join(5)


def log_in(browser, base, **options):
    context = browser.new_context(**options)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base}/")
    page.fill("#id_username", ADMIN)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return context, page


def live(page, url):
    """Open a page and wait until its socket is up and its charts (if any) are drawn."""
    page.goto(url)
    # A function, not an expression: the pages' CSP has no 'unsafe-eval'.
    page.wait_for_function("() => document.body.dataset.live === 'on'")
    if page.locator("section[data-charts]").count():
        page.wait_for_selector("section[data-charts][data-points]")
    page.wait_for_timeout(1000)  # let the last live fragments land


def capture(browser, base):
    wide = {"viewport": {"width": 1440, "height": 900}, "color_scheme": "light"}
    context, page = log_in(browser, base, **wide)
    live(page, f"{base}/services/web/")
    page.screenshot(path=str(DOCS / "service.png"), full_page=True)
    live(page, f"{base}/")
    page.screenshot(path=str(DOCS / "overview.png"), full_page=True)
    context.close()
    phone = {"viewport": {"width": 390, "height": 844}, "color_scheme": "dark", "is_mobile": True}
    context, page = log_in(browser, base, **phone)
    live(page, f"{base}/")
    page.screenshot(path=str(DOCS / "overview-phone-dark.png"), full_page=True)
    context.close()


def run(stack, minutes):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context, _ = log_in(browser, stack.url)
        api = Api(context, stack.url)
        build_fleet(api, stack.lab["images"])
        traffic = Traffic(stack.env["FLEET_INGRESS_BIND"])
        traffic.start()
        try:
            say(f"sampling usage for {minutes} min under traffic through the ingress")
            time.sleep(minutes * 60)
            say("taking the screenshots (the traffic goes on, so the ingress shows it)")
            if (rounds := api.sampled("web")) < minutes * 3:  # 6 rounds a minute, half of them
                raise RuntimeError(f"only {rounds} rounds of web's usage were sampled")
            say(f"{rounds} rounds of web's usage sampled")
            context.close()
            capture(browser, stack.url)
        finally:
            traffic.stop()
        say(f"{traffic.sent} requests sent through the ingress")
        browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.5, help="usage sampled before")
    options = parser.parse_args()
    # A TERM (from `timeout`, say) unwinds like Ctrl-C, through the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    configure()
    lab_name = harness.ENV["FLEET_LAB_NAME"]
    stack = harness.Stack()
    ingress = tempfile.TemporaryDirectory(prefix="fleet-screens-")
    stack.env.update(
        FLEET_ADMIN_USER=ADMIN,
        FLEET_ADMIN_PASSWORD=PASSWORD,
        FLEET_INGRESS_DIR=ingress.name,
        FLEET_INGRESS_BIND=f"127.0.0.1:{harness.free_port()}",
        FLEET_DEFAULT_IMAGE=Lab(lab_name, harness.ENV["FLEET_LAB_SUBNET"]).images["demo_v1"],
    )
    ingress_up = False
    try:
        say(f"starting the stack (lab {lab_name}) ...")
        stack.start()
        stack.manage("ensure_admin")
        ingress_up = True  # set first: a start that fails half way leaves a pid file to stop
        stack.manage("ingress", "start")
        say(f"Fleet at {stack.url}, ingress on {stack.env['FLEET_INGRESS_BIND']}")
        run(stack, options.minutes)
    finally:
        say("stopping everything started")
        try:
            if ingress_up:
                stack.manage("ingress", "stop")
        finally:
            stack.stop()
            ingress.cleanup()
    for name in ("overview.png", "service.png", "overview-phone-dark.png"):
        say(f"docs/{name}: {(DOCS / name).stat().st_size // 1024} KB")
    say(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
