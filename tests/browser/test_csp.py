"""The strict Content-Security-Policy in a real browser: nothing on the pages is refused,
and the live socket still connects under connect-src 'self'."""

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
    window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}`));
"""


@pytest.fixture
def watched(page):
    """The logged-in page, recording CSP violations from the next navigation on."""
    console = []
    page.on(
        "console",
        lambda msg: console.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.context.add_init_script(RECORD_VIOLATIONS)
    page.console_csp = console
    return page


def visit(page, path, ready):
    page.goto(f"{page.base}{path}")
    page.wait_for_selector(ready)
    assert page.evaluate("window.cspViolations") == [], path
    assert page.console_csp == [], path


def test_pages_keep_to_the_policy_and_stay_live(watched):
    from fleet import services
    from fleet.services.spec import ServiceSpecSerializer

    spec = ServiceSpecSerializer(data={"name": "web", "image": "busybox:1", "replicas": 0})
    spec.is_valid(raise_exception=True)
    service = services.create(spec.validated_data)
    page = watched

    visit(page, "/", "body[data-live=on]")
    page.click("summary:has-text('New service')")  # the form's <details> opens without script
    visit(page, "/services/web/", "body[data-live=on]")
    visit(page, "/admin/", "#content")
    visit(page, f"/admin/fleet/service/{service.pk}/change/", "#service_form")
    # Swagger UI builds the page from its start-up script: it ran if the operations show.
    visit(page, "/api/docs/", ".opblock-tag")
    assert page.locator(".opblock").count() > 10
