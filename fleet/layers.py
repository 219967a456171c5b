"""Fleet's layers, top to bottom, and the packages in each: the one table of them.

Imports run one way, down the table: a module imports its own layer or those below it,
never one above, not even inside a function, and no modules import each other in a
circle. The layer test (tests/unit/test_layers.py) reads this table, the architecture
page of the docs shows it, and `python -m fleet.layers` prints the picture.
A package named here holds every module below it (`fleet.services` holds
`fleet.services.spec`); the longest name that fits a module decides its layer.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    name: str
    holds: str
    packages: tuple[str, ...]


LAYERS = (
    Layer(
        "wiring",
        "the project: settings, URLs, the ASGI and Celery apps that name the entry points",
        (
            "fleet",
            "fleet.apps",
            "fleet.asgi",
            "fleet.asgi_access",
            "fleet.celery",
            "fleet.layers",
            "fleet.migrations",
            "fleet.settings",
            "fleet.settings_features",
            "fleet.urls",
        ),
    ),
    Layer(
        "entry points",
        "people, programs and processes come in here: pages, sockets, API, admin, commands, tasks",
        ("dashboard", "fleet.admin", "fleet.api", "fleet.management", "fleet.tasks"),
    ),
    Layer(
        "domain",
        "what Fleet knows and does: state, the actions people take, and the work behind them",
        (
            "fleet.stacks",
            "fleet.services",
            "fleet.nodes",
            "fleet.converge",
            "fleet.alerts",
            "fleet.metrics",
            "fleet.ingress",
            "fleet.console",
            "fleet.access",
            "fleet.queue",
            "fleet.models",
        ),
    ),
    Layer(
        "seams",
        "the one door to each outside system, importing nothing of Fleet's above them",
        (
            "fleet.engine",
            "fleet.live",
            "fleet.live_layer",
            "fleet.notify",
            "fleet.redis_link",
            "fleet.slots",
        ),
    ),
)

# The outside libraries only one part of Fleet may import.
OWNERS = {
    "docker": "fleet.engine",
    "paramiko": "fleet.engine",
    "channels.layers": "fleet.live",
    "channels_redis": "fleet.live_layer",
    "apprise": "fleet.notify",
}

# Imports the layers allow that are still wrong: {(importer, imported): why not}.
FORBIDDEN = {
    ("dashboard", "fleet.engine"): "pages and sockets never call an engine",
    ("fleet.api", "fleet.engine"): "the API never calls an engine",
    ("fleet.admin", "fleet.engine"): "the admin never calls an engine",
}

# Development tools beside the product: nothing of the product imports them.
TOOLS = ("lab", "bench", "tests", "docs")


def within(name, package):
    return name == package or name.startswith(package + ".")


def layer_of(module):
    """The index in LAYERS of the layer holding a module of Fleet's, or None."""
    best = None
    for index, layer in enumerate(LAYERS):
        for package in layer.packages:
            if within(module, package) and (best is None or len(package) > len(best[1])):
                best = (index, package)
    return best and best[0]


def picture():
    """The layers as text, top to bottom, each with what it holds and its packages."""
    lines = []
    for index, layer in enumerate(LAYERS):
        if index:
            lines += ["    |", "    v"]
        lines.append(f"{layer.name}: {layer.holds}")
        lines.append("    " + "  ".join(layer.packages))
    return "\n".join(lines)


if __name__ == "__main__":
    print(picture())
