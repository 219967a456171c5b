"""The console in a real browser: a terminal on a running replica from the service page, under
the strict Content-Security-Policy."""

import pytest

from fleet.models import Event, Replica
from tests.browser.conftest import screenshot
from tests.browser.test_csp import RECORD_VIOLATIONS
from tests.browser.test_overview import axe_violations

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def test_an_admin_types_a_command_in_a_replicas_console_and_reads_its_output(page, fleet):
    fleet.create("shell", replicas=1, update={"monitor": 0})
    fleet.converged("shell", 1)
    replica = Replica.objects.get(service__name="shell")
    csp = []
    page.on("console", lambda m: csp.append(m.text) if "Content Security" in m.text else None)
    page.context.add_init_script(RECORD_VIOLATIONS)
    page.goto(f"{page.base}/services/shell/")
    page.wait_for_function("() => document.body.dataset.live === 'on'")

    page.click(f"#replica-{replica.pk} button[data-act=console]")
    page.wait_for_selector("#console-state:has-text('/bin/sh in')")
    page.click("#console-screen")
    page.keyboard.type("echo fleet-$((6*7))\n")
    # The command line echoes `$((6*7))`; only the shell's answer reads fleet-42.
    page.wait_for_selector("#console-screen .xterm-rows:has-text('fleet-42')")
    assert "fleet-42" in page.inner_text("#console-screen .xterm-rows")
    screenshot(page, "console")
    assert axe_violations(page) == []
    page.keyboard.type("exit 3\n")
    page.wait_for_selector("#console-state:has-text('exit code 3')")

    assert page.evaluate("window.cspViolations") == [] and csp == []
    assert Event.objects.filter(kind="console.opened", actor="root").count() == 1
    closed = Event.objects.get(kind="console.closed")
    assert closed.new == "3" and closed.via == "web"
