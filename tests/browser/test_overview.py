"""The overview in a real browser: the glance, filters and sorting live, a first run that helps,
phone and wide screens, and no serious accessibility violation (axe-core) on any page."""

from pathlib import Path

import pytest

from tests.browser.conftest import screenshot, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

# Vendored from npm (axe-core, MPL-2.0); served to the page by the test alone, never by Fleet.
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1.min.js"


def tile(page, table, state):
    return int(page.inner_text(f"[data-count-table={table}][data-count-state={state}] .n"))


def live(page, path="/"):
    page.goto(f"{page.base}{path}")
    page.wait_for_function("() => document.body.dataset.live === 'on'")


def axe_violations(page):
    """Serious and critical axe-core findings on the page as it is, as short sentences."""
    page.route(
        "**/__axe.js",
        lambda route: route.fulfill(body=AXE.read_text(), content_type="text/javascript"),
    )
    page.add_script_tag(url=f"{page.base}/__axe.js")
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def test_the_demo_deploys_in_one_click_and_the_glance_follows(page, fleet):
    live(page)
    assert tile(page, "service", "healthy") == 0
    page.evaluate("window.sameDocument = true")
    page.click("text=Deploy the demo image")
    page.wait_for_url(f"{page.base}/services/demo/")
    fleet.converged("demo", 3)
    live(page)
    wait_for(lambda: tile(page, "service", "healthy") == 1, 30, message="demo counted healthy")
    assert tile(page, "node", "ready") == 3
    assert page.locator("#service-demo .mark.rep-running").count() == 3

    page.evaluate("window.sameDocument = true")
    fleet.create("api", replicas=1, update={"monitor": 0})
    # A new service joins the table and the tiles without a reload.
    page.wait_for_selector("#service-api")
    wait_for(lambda: tile(page, "service", "healthy") == 2, 60, message="api counted healthy")
    page.fill("#service-q", "dem")
    assert page.is_hidden("#service-api") and page.is_visible("#service-demo")
    page.fill("#service-q", "")
    page.select_option("#node-status", "drained")
    assert page.locator("tbody[data-table=node] tr:visible").count() == 0
    page.select_option("#node-status", "")
    page.click("th button.sort[data-sort=name] >> nth=1")  # services by name, descending
    names = page.eval_on_selector_all(
        "tbody[data-table=service] tr", "rows => rows.map(r => r.dataset.id)"
    )
    assert names == ["demo", "api"]
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"


WIDE_TABLES = """() => [...document.querySelectorAll('.table-wrap')]
  .filter(w => w.scrollWidth > w.clientWidth + 1)
  .map(w => w.closest('section, main').querySelector('h1, h2').textContent)"""
UNLABELLED_CELLS = """() => [...document.querySelectorAll('.table-wrap td:not([colspan])')]
  .filter(td => !td.dataset.label).map(td => td.textContent.trim().slice(0, 30))"""


# A phone in the dark scheme and a wide screen in the light one: both schemes, both sizes.
@pytest.mark.parametrize(("width", "scheme"), [(390, "dark"), (1440, "light")])
def test_every_page_reads_on_a_phone_and_a_wide_screen_without_serious_violations(
    page, fleet, width, scheme
):
    fleet.create("web", replicas=2, ports=[{"container": 80}], update={"monitor": 0})
    login = {"server": "registry.example.com:5000", "username": "ci", "password": "p"}
    assert fleet.api.post("/api/registries/", login, format="json").status_code == 201
    fleet.converged("web", 2)
    page.set_viewport_size({"width": width, "height": 900})
    page.emulate_media(color_scheme=scheme)
    found = {}
    for name, path in [
        ("overview", "/"),
        ("service", "/services/web/"),
        ("node", "/nodes/lab-1/"),
        ("events", "/events/"),
        ("alerts", "/alerts/"),
        ("registries", "/registries/"),
    ]:
        live(page, path)
        # Nothing sticks out sideways, and no table scrolls sideways in its box either:
        # on a phone its rows are cards, each cell under its column's name.
        overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than the {width}px screen"
        assert page.evaluate(WIDE_TABLES) == [], f"{path}: tables wider than their box"
        assert page.evaluate(UNLABELLED_CELLS) == [], f"{path}: cells without a column name"
        found[path] = axe_violations(page)
        screenshot(page, f"{name}-{width}-{scheme}")
    assert found == {path: [] for path in found}


FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  return {
    name: el.getAttribute("aria-label") || el.id || el.textContent.trim().slice(0, 40),
    outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
    onScreen: box.right > 0 && box.bottom > 0 && box.left < innerWidth,
  };
}"""


def test_the_overviews_controls_are_reached_by_the_keyboard_and_show_their_focus(page, fleet):
    fleet.create("web", replicas=0)
    live(page)
    page.wait_for_selector("#service-web")
    reached = []
    for _ in range(300):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None or (reached and focused == reached[0]):
            break  # past the last control, or round to the first again
        reached.append(focused)
    names = [f["name"] for f in reached]
    assert names[0] == "Skip to content" and reached[0]["onScreen"]
    for control in ("service-q", "node-status", "Add one replica of web", "New service"):
        assert control in names, f"{control} is not reached with Tab: {names}"
    unseen = [f["name"] for f in reached if not (f["outline"] and f["onScreen"])]
    assert unseen == [], "focused without a visible outline"


def test_a_live_change_leaves_the_focus_and_a_press_where_they_were(page, fleet):
    """A changed row is morphed, not replaced, and moved only when its place changes: a
    keyboard user's focus stays on its control, and so does a click whose press and
    release a live change falls between."""
    fleet.create("web", replicas=0)
    fleet.create("api", replicas=0)
    live(page)
    page.wait_for_selector("#service-web")
    order = "() => [...document.querySelectorAll('tbody[data-table=service] tr')].map(r => r.id)"
    for _ in range(2):  # services by desired replicas, descending: a scale-up moves web up
        page.click("tbody[data-table=service] >> xpath=.. >> th button.sort[data-sort=desired]")
    assert page.evaluate(order) == ["service-api", "service-web"]
    plus = "#service-web button[data-act=scale-up]"
    page.focus(plus)
    page.evaluate("() => { window.focused = document.activeElement; }")

    assert fleet.api.post("/api/services/web/scale/", {"replicas": 1}).status_code == 202
    page.wait_for_selector("#service-web[data-replicas='1']")
    assert page.evaluate(order) == ["service-web", "service-api"]
    assert page.evaluate("() => document.activeElement === window.focused"), "focus lost"

    box = page.locator(plus).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    assert fleet.api.post("/api/services/web/scale/", {"replicas": 2}).status_code == 202
    page.wait_for_selector("#service-web[data-replicas='2']")
    page.mouse.up()  # the click lands on the same button: 2 + 1
    page.wait_for_selector("#service-web[data-replicas='3']")
    assert fleet.service("web")["replicas"] == 3
