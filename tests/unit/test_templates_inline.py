"""Fleet's templates and script hold no inline code a strict Content-Security-Policy refuses."""

from pathlib import Path

import pytest

from tests.integration.test_csp import inline_code

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_template_has_no_inline_script_style_or_handler(path):
    assert inline_code(path.read_text()) == []


@pytest.mark.parametrize("name", ["fleet.js", "overview.js", "charts.js"])
def test_the_page_scripts_build_no_inline_style_or_handler(name):
    source = (ROOT / "static" / "js" / name).read_text()
    assert "setAttribute('style'" not in source and 'setAttribute("style"' not in source
    assert inline_code(source) == []


def test_it_catches_what_it_is_meant_to():
    found = inline_code('<script>x()</script><p style="a" onclick="b"><style>')
    assert len(found) == 4
