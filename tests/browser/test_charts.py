"""Usage charts in a real browser: drawn from the API, and the last hour appended live."""

import time

import pytest
from django.conf import settings

from fleet.metrics import store
from fleet.metrics.readings import Usage
from fleet.models import Node, Service
from tests.browser.conftest import SCREENSHOTS, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def write(node, service, t, cpus):
    rows = [
        (
            {"service_id": service.pk, "slot": slot},
            Usage(cpu, 64 << 20, 1 << 30, 500.0, 200.0, 0, 0),
        )
        for slot, cpu in enumerate(cpus, start=1)
    ]
    store.write_round(node.pk, t, rows)


def test_a_service_page_draws_its_usage_and_appends_each_round_as_it_arrives(page, api):
    violations = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    node = Node.objects.create(name="n1", endpoint="unix:///nowhere.sock", cpus=2)
    made = api.post(
        "/api/services/",
        {"name": "web", "image": settings.FLEET_DEFAULT_IMAGE, "replicas": 0},
        format="json",
    )
    assert made.status_code == 201, made.json()
    service = Service.objects.get(name="web")
    now = int(time.time()) // 10 * 10
    for i in range(1, 7):
        write(node, service, now - 60 + 10 * i, [20, 30])
    page.goto(f"{page.base}/services/web/")
    page.wait_for_function("() => document.body.dataset.live === 'on'")
    page.wait_for_selector("section[data-charts][data-points]")
    assert page.locator("section[data-charts] .uplot canvas").count() == 3
    legend = page.locator("[data-chart=cpu] .u-legend").inner_text()
    assert "all replicas" in legend and "web.1" in legend and "web.2" in legend
    before = int(page.get_attribute("section[data-charts]", "data-points"))

    write(node, service, now + 10, [40, 50])  # the next round, pushed over the socket
    page.wait_for_function(
        f"() => document.querySelector('section[data-charts]').dataset.newest === '{now + 10}'"
    )
    assert int(page.get_attribute("section[data-charts]", "data-points")) >= before
    page.locator("section[data-charts]").screenshot(path=str(SCREENSHOTS / "usage-hour.png"))
    page.click("button[data-range='86400']")
    page.wait_for_function(
        "() => document.querySelector('[data-chart-status]').textContent.includes('rollups')"
    )
    screenshot(page, "service-usage")
    assert not violations, violations
