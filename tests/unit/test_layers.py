"""The layers run one way: entry points -> domain -> seams (ARCHITECTURE.md, Layers).

Every import in every module counts, those inside functions included.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Entry points: people, programs and processes come in here. They may import anything.
ENTRY = ("dashboard", "fleet.api", "fleet.admin", "fleet.management", "fleet.tasks")
# Project wiring (settings, URLs, ASGI and Celery apps): entry points too. The package
# `fleet` itself loads the Celery app, as Celery's Django set-up asks.
WIRING = ("fleet.settings", "fleet.urls", "fleet.asgi", "fleet.celery", "fleet.migrations")
PROJECT_PACKAGE = "fleet"
# The seams: the one door to each outside system, importing nothing of Fleet's own.
SEAMS = {"fleet.engine": "docker", "fleet.live": "channels.layers", "fleet.notify": "apprise"}


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def within(name, prefixes):
    return any(name == p or name.startswith(p + ".") or name.startswith(p + "_") for p in prefixes)


def imports_of(source, name, is_package=False):
    """Every module a source imports (absolute names), at any depth of its code."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module
            found.add(origin)
            # `from . import live` imports the module fleet.live
            found.update(f"{origin}.{alias.name}" for alias in node.names)
    return found


def violations(name, imported):
    """Why each import of module `name` runs the wrong way, as sentences."""
    found = []
    upward = ENTRY + WIRING
    for target in sorted(imported):
        if not (target.startswith("fleet") or target.startswith("dashboard")):
            owner = next((seam for seam, lib in SEAMS.items() if within(target, (lib,))), None)
            if owner and name != owner:
                found.append(f"{name} imports {target}: only {owner} may")
            continue
        if name == PROJECT_PACKAGE or within(name, upward):
            if within(target, ("fleet.engine",)) and within(name, ("dashboard", "fleet.api")):
                found.append(f"{name} imports {target}: pages and the API never call the engine")
            continue
        if within(target, upward):
            found.append(f"{name} imports {target}: the domain never imports an entry point")
        elif name in SEAMS and target not in ("fleet", name) and not target.startswith(name):
            found.append(f"{name} imports {target}: a seam imports nothing of Fleet's")
    return found


def all_modules():
    for top in ("fleet", "dashboard"):
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path, module_name(path)


def test_no_import_runs_back_up():
    found = []
    for path, name in all_modules():
        imported = imports_of(path.read_text(), name, path.name == "__init__.py")
        found += violations(name, imported)
    assert found == []


def test_the_walk_sees_imports_inside_functions():
    source = "def f():\n    from ..tasks import converge_service\n"
    imported = imports_of(source, "fleet.converge.planner")
    assert "fleet.tasks" in imported
    assert violations("fleet.converge.planner", imported) == [
        "fleet.converge.planner imports fleet.tasks: the domain never imports an entry point",
        "fleet.converge.planner imports fleet.tasks.converge_service: "
        "the domain never imports an entry point",
    ]


def test_it_refuses_the_domain_rendering_pages_and_the_pages_calling_docker():
    assert violations("fleet.live", {"dashboard.fragments"})
    assert violations("fleet.services", {"fleet.api.service_views"})
    assert violations("fleet.models.services", {"fleet.admin_services"})
    assert violations("dashboard.consumers", {"fleet.engine"})
    assert violations("fleet.api.views", {"fleet.engine"})
    assert violations("fleet.observe", {"docker"})
    assert violations("dashboard.consumers", {"channels.layers"})
    assert violations("fleet.engine", {"fleet.models"})
    assert violations("fleet.alerts.delivery", {"apprise"})
    assert violations("fleet.notify", {"fleet.models"})


def test_it_lets_entry_points_use_the_domain_and_the_domain_use_the_seams():
    assert violations("dashboard.views", {"fleet.models", "fleet.services", "fleet.api"}) == []
    assert violations("fleet.services", {"fleet.live", "fleet.queue", "fleet.models"}) == []
    assert violations("fleet.containers", {"fleet.engine"}) == []
    assert violations("fleet.engine", {"docker", "docker.errors"}) == []
    assert violations("fleet.live", {"channels.layers", "django.conf"}) == []
