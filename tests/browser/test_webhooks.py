"""Deploy webhooks on the service page, in a real browser: the URL shown once, in place."""

import pytest
from rest_framework.test import APIClient

from fleet import services
from fleet.models import Webhook
from fleet.services.spec import ServiceSpecSerializer
from tests.browser.test_overview import axe_violations

pytestmark = [pytest.mark.django_db(transaction=True)]


def hook_answer(url):
    path = "/hooks/" + url.split("/hooks/", 1)[1]
    return APIClient().post(path, {"tag": "2"}, format="json").status_code


def test_an_operator_makes_rotates_and_revokes_a_webhook_without_a_reload(page, settings):
    spec = ServiceSpecSerializer(data={"name": "web", "image": settings.FLEET_DEFAULT_IMAGE})
    spec.is_valid(raise_exception=True)
    services.create(spec.validated_data)
    page.goto(f"{page.base}/services/web/")
    page.wait_for_function("() => document.body.dataset.live === 'on'")
    page.evaluate("window.sameDocument = true")

    page.fill("#webhook-name", "ci")
    page.click("form[data-form=webhook] button[type=submit]")
    page.wait_for_selector("#webhook-list th:has-text('ci')")
    first = page.inner_text("#webhook-url")
    assert first.startswith(f"{page.base}/hooks/deploy/")
    assert first.rsplit("/", 1)[1] not in page.inner_text("#webhook-list")
    assert axe_violations(page) == []

    page.click("button[data-act=webhook-rotate]")
    page.wait_for_function(
        "(old) => document.getElementById('webhook-url').textContent !== old", arg=first
    )
    second = page.inner_text("#webhook-url")
    assert hook_answer(first) == 404
    assert hook_answer(second) == 202

    page.click("button[data-act=webhook-revoke]")
    page.wait_for_selector("#webhook-list th:has-text('ci')", state="detached")
    assert not Webhook.objects.exists()
    assert hook_answer(second) == 404
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"
