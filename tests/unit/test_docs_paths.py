"""What the README and the manual in docs/ name exists: every API path, command, module,
make target and setting they show, every page in the site's navigation, and the site builds.

No lab is needed: paths are resolved by Django's URL resolver, commands looked up as Django
lists them, modules found without importing them. tests/integration/test_docs.py runs the
examples themselves.
"""

import importlib.machinery
import importlib.util
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from django.core.management import get_commands
from django.urls import Resolver404, resolve

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCS = [ROOT / "README.md", *PAGES]

# /api/... and /hooks/... wherever they appear: in prose, code spans and examples' URLs.
API_PATH = re.compile(r"/(?:api|hooks)/(?:[\w\-./=&{}]|<\w+>)*")
# The pages' own paths, named in code spans.
PAGE_PATH = re.compile(r"`(/(?:metrics|admin/|events/|alerts/|login/)[^`\s]*)`")
SOCKET_PATH = re.compile(r"/ws/\w+/")
MANAGE = re.compile(r"manage\.py (\w+)")
MODULE = re.compile(r"python -m ([\w.]+)")
# `make run`, `PORT=9000 make run`, and a line of an example that starts with make.
MAKE = re.compile(r"(?:`|^)(?:[A-Z_]+=\S* )*make ([\w-]+)", re.M)
# Sample values for placeholders; an id is a number or, for API tokens, a UUID.
SAMPLES = {
    "{name}": ["web"],
    "{id}": ["1", "0b6f6c1e-8d0c-4d7e-9a51-3f6f0e2f7a10"],
    "{slot}": ["1"],
    "<secret>": ["s3cret"],
}
# The mount points themselves, named as such ("the REST API is at /api/"), not endpoints.
MOUNTS = {"/api/", "/api/...", "/hooks/..."}


def mentioned(pattern):
    """{what is named: [the pages that name it]}"""
    found = {}
    for page in DOCS:
        for match in pattern.finditer(page.read_text()):
            found.setdefault(match.group(match.lastindex or 0), []).append(page.name)
    assert found, f"no page mentions {pattern.pattern}"
    return found


def concrete(path):
    """A documented path as requests would have it: placeholders filled, no query."""
    path = path.split("?")[0].rstrip(".")
    shown = [p for p in SAMPLES if p in path]
    for values in itertools.product(*(SAMPLES[p] for p in shown)):
        filled = path
        for placeholder, value in zip(shown, values, strict=True):
            filled = filled.replace(placeholder, value)
        yield filled


def resolves(path):
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def test_every_api_path_the_docs_show_is_one_of_fleets_urls():
    paths = mentioned(API_PATH)
    assert "/api/nodes/{name}/drain" in paths
    endpoints = {p: pages for p, pages in paths.items() if p not in MOUNTS}
    missing = {p: pages for p, pages in endpoints.items() if not any(map(resolves, concrete(p)))}
    assert not missing, f"documented paths Fleet does not serve: {missing}"


def test_every_page_path_the_docs_name_is_one_of_fleets_urls():
    missing = {p: pages for p, pages in mentioned(PAGE_PATH).items() if not resolves(p)}
    assert not missing, f"documented pages Fleet does not serve: {missing}"


def test_every_socket_the_docs_name_is_routed():
    from dashboard.routing import websocket_urlpatterns

    routed = {"/" + str(route.pattern) for route in websocket_urlpatterns}
    missing = {p: pages for p, pages in mentioned(SOCKET_PATH).items() if p not in routed}
    assert not missing, f"documented sockets that are not routed: {missing}"


def test_every_manage_py_command_the_docs_show_exists():
    commands = get_commands()
    found = mentioned(MANAGE)
    assert {"watch", "role", "ingress"} <= found.keys()
    missing = {c: pages for c, pages in found.items() if c not in commands}
    assert not missing, f"documented manage.py commands that do not exist: {missing}"


def module_exists(name):
    """Whether `python -m name` finds a module, looked up without importing a thing.

    The project's own packages are looked for in the repository's root, where `python -m`
    runs them from; anything else where this interpreter finds it."""
    top = name.split(".")[0]
    if not ((ROOT / top).is_dir() or (ROOT / f"{top}.py").is_file()):
        return importlib.util.find_spec(top) is not None
    path, parts = [str(ROOT)], name.split(".")
    for depth in range(1, len(parts) + 1):
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[:depth]), path)
        if spec is None:
            return False
        path = spec.submodule_search_locations or []
    return True


def test_every_python_module_the_docs_run_exists():
    found = mentioned(MODULE)
    assert {"lab", "bench", "bench.soak", "fleet.layers"} <= found.keys()
    missing = {m: pages for m, pages in found.items() if not module_exists(m)}
    assert not missing, f"documented python -m modules that do not exist: {missing}"


def test_every_make_target_the_docs_show_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    found = mentioned(MAKE)
    assert {"run", "test", "docs", "bench", "soak"} <= found.keys()
    missing = {t: pages for t, pages in found.items() if t not in targets}
    assert not missing, f"documented make targets the Makefile lacks: {missing}"


def nav_pages(entries):
    for entry in entries:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            if isinstance(value, list):
                yield from nav_pages(value)
            else:
                yield value


def test_the_sites_navigation_lists_every_page_once():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = list(nav_pages(config["nav"]))
    assert sorted(listed) == sorted(page.name for page in PAGES)


def test_the_configuration_reference_names_every_setting():
    read = set()
    for module in ("settings.py", "settings_features.py"):
        source = (ROOT / "fleet" / module).read_text()
        calls = re.findall(r"([\w.]+)\(\s*\"([A-Z][A-Z0-9_]+)\"", source)
        read |= {name for callee, name in calls if not callee.endswith("startswith")}
    assert {"SECRET_KEY", "DATABASE_URL", "FLEET_NODE_DOWN_AFTER"} <= read
    reference = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(name for name in read if f"`{name}`" not in reference)
    assert not missing, f"settings missing from docs/configuration.md: {missing}"


def test_the_site_builds_strictly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "architecture" / "index.html").is_file()


def test_the_readme_stays_a_five_minute_read_that_links_into_the_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    linked = set(re.findall(r"\]\((docs/[^)#]+)", readme))
    assert {f"docs/{page.name}" for page in PAGES} - linked == set(), "a page the README skips"
    missing = sorted(path for path in linked if not (ROOT / path).is_file())
    assert not missing, f"the README links to files that do not exist: {missing}"
