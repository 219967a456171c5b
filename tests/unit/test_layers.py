"""The layers run one way and no modules import each other in a circle (fleet/layers.py).

Every import in every module counts, those inside functions included, and so does the
package an import runs first: `from fleet.nodes import observe` runs fleet/nodes/__init__.py
before observe.py, so a circle through a package's __init__ is a circle too.
"""

import ast
from pathlib import Path

from fleet.layers import FORBIDDEN, LAYERS, OWNERS, TOOLS, layer_of, picture, within

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("fleet", "dashboard")


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules():
    """{module name: source} of every module of the product."""
    found = {}
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("*.py")):
            found[module_name(path)] = (path.read_text(), path.name == "__init__.py")
    return found


def imports_of(source, name, is_package=False, known=None):
    """Every module a source imports (absolute names), at any depth of its code.

    `from a import b` imports the module a.b when there is one (known), else a."""
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
            names = [f"{origin}.{alias.name}" for alias in node.names]
            modules = [n for n in names if known is None or n in known]
            found.update(modules)
            if known is None or len(modules) < len(names):
                found.add(origin)  # a name defined in the module `origin`
    return found


def runs_first(importer, imported, known):
    """The packages whose __init__ runs when `importer` imports `imported`: its parents
    that are modules of the product, other than the packages holding the importer itself
    (those are under way already)."""
    parts = imported.split(".")
    parents = (".".join(parts[:i]) for i in range(1, len(parts)))
    return {p for p in parents if p in known and not within(importer, p)}


def graph(modules):
    """{module: the product's modules it imports, with the packages those run first}."""
    known = set(modules)
    edges = {}
    for name, (source, is_package) in modules.items():
        targets = {t for t in imports_of(source, name, is_package, known) if t in known}
        edges[name] = targets | {p for t in targets for p in runs_first(name, t, known)}
        edges[name].discard(name)
    return edges


def cycles(edges):
    """Each circle of imports (a strongly connected group of two or more modules), sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        # Tarjan's algorithm, with an explicit stack of iterators: no recursion limit.
        work = [(node, iter(sorted(edges.get(node, ()))))]
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[current] = min(low[current], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[current])
            if low[current] == index[current]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == current:
                        break
                if len(group) > 1:
                    found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def violations(name, imported):
    """Why each import of module `name` runs the wrong way, as sentences."""
    found = []
    mine = layer_of(name)
    for target in sorted(imported):
        owner = next((o for lib, o in OWNERS.items() if within(target, lib)), None)
        if owner and not within(name, owner):
            found.append(f"{name} imports {target}: only {owner} may")
        if any(within(target, tool) for tool in TOOLS):
            found.append(f"{name} imports {target}: the product never imports its tools")
        for (importer, imported_package), why in FORBIDDEN.items():
            if within(name, importer) and within(target, imported_package):
                found.append(f"{name} imports {target}: {why}")
        theirs = layer_of(target)
        if theirs is None or mine is None:
            continue
        if theirs < mine:
            found.append(
                f"{name} ({LAYERS[mine].name}) imports {target} ({LAYERS[theirs].name}): "
                "an import never runs up the layers"
            )
    return found


def test_every_module_of_the_product_has_a_layer():
    assert [name for name in product_modules() if layer_of(name) is None] == []


def test_no_import_runs_back_up(capsys):
    modules = product_modules()
    found = []
    for name, (source, is_package) in modules.items():
        found += violations(name, imports_of(source, name, is_package, set(modules)))
    with capsys.disabled():
        print(f"\n{picture()}")
    assert found == []


def test_no_modules_import_each_other_in_a_circle():
    assert cycles(graph(product_modules())) == []


def test_the_walk_sees_imports_inside_functions():
    source = "def f():\n    from fleet.tasks import converge_service\n"
    imported = imports_of(source, "fleet.converge.planner")
    assert "fleet.tasks" in imported
    assert violations("fleet.converge.planner", {"fleet.tasks"}) == [
        "fleet.converge.planner (domain) imports fleet.tasks (entry points): "
        "an import never runs up the layers"
    ]


def test_it_refuses_the_domain_rendering_pages_and_the_pages_calling_docker():
    assert violations("fleet.live", {"dashboard.fragments"})
    assert violations("fleet.services.actions", {"fleet.api.service_views"})
    assert violations("fleet.models.services", {"fleet.admin.services"})
    assert violations("dashboard.consumers", {"fleet.engine"})
    assert violations("fleet.api.views", {"fleet.engine.client"})
    assert violations("fleet.nodes.observe", {"docker"})
    assert violations("dashboard.consumers", {"channels.layers"})
    assert violations("fleet.engine.client", {"fleet.models"})
    assert violations("fleet.alerts.delivery", {"apprise"})
    assert violations("fleet.notify", {"fleet.models"})
    assert violations("fleet.management.commands.watch", {"lab"})


def test_it_lets_entry_points_use_the_domain_and_the_domain_use_the_seams():
    assert violations("dashboard.views", {"fleet.models", "fleet.services", "fleet.api"}) == []
    assert violations("fleet.services.actions", {"fleet.live", "fleet.queue", "fleet.models"}) == []
    assert violations("fleet.converge.containers", {"fleet.engine"}) == []
    assert violations("fleet.engine.client", {"docker", "docker.errors"}) == []
    assert violations("fleet.engine.pulls", {"fleet.redis_link", "fleet.slots"}) == []
    assert violations("fleet.live", {"channels.layers", "django.conf"}) == []


def test_a_circle_through_a_package_that_runs_first_is_found():
    modules = {
        "fleet.a": ("", True),
        "fleet.a.x": ("", False),
        "fleet.a.y": ("def f():\n    from fleet.b import m\n", False),
        "fleet.b": ("", True),
        "fleet.b.m": ("from fleet.a import x\n", False),
    }
    assert cycles(graph(modules)) == []
    # Now fleet.a's __init__ imports y: fleet.b.m's import of fleet.a.x runs it first, and
    # it leads back to fleet.b.m.
    modules["fleet.a"] = ("from fleet.a import y\n", True)
    assert cycles(graph(modules)) == [["fleet.a", "fleet.a.y", "fleet.b.m"]]


def test_the_two_old_circles_would_be_found():
    admin = {
        "fleet.admin": ("from fleet import admin_alerts\nclass ReadOnlyAdmin: pass\n", False),
        "fleet.admin_alerts": ("from fleet.admin import ReadOnlyAdmin\n", False),
    }
    assert cycles(graph(admin)) == [["fleet.admin", "fleet.admin_alerts"]]
    ingress = {
        "fleet.ingress": ("", True),
        "fleet.ingress.config": ("def f():\n    from fleet.ingress.sync import x\n", False),
        "fleet.ingress.sync": ("from fleet.ingress import config\n", False),
    }
    assert cycles(graph(ingress)) == [["fleet.ingress.config", "fleet.ingress.sync"]]


def test_every_package_says_what_it_owns():
    silent = []
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("__init__.py")):
            if "migrations" in path.parts:
                continue
            docstring = ast.get_docstring(ast.parse(path.read_text()))
            if not docstring or len(docstring.splitlines()[0]) < 20:
                silent.append(module_name(path))
    assert silent == []
