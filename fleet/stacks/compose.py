"""A Compose file read, interpolated and checked before anything is made from it.

In order, each step stopping at its first failure: the text is parsed as YAML 1.2, as
Compose v2 parses it (so `ports: [80:80]` is the string it looks like, not YAML 1.1's
sexagesimal 4880, and `yes` stays a string), refusing duplicate keys; its variables are
interpolated from the stack's `.env` text (fleet.stacks.interpolation); the result is
checked against the Compose Specification's own JSON schema (compose_spec/, vendored with
its version and license); then against what Fleet supports (SUPPORTED). Every problem is
named with where it is, e.g. `services.web.build: ...`.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match

from fleet.stacks.interpolation import EnvError, InterpolationError, interpolate_all, parse_env

SCHEMA = Path(__file__).with_name("compose_spec") / "compose-spec.json"
MAX_BYTES = 512 * 1024  # a Compose file, or its .env text
MAX_VALUES = 50_000  # after YAML aliases are expanded (a "billion laughs" file is refused)
MAX_PROBLEMS = 20

# The keys Fleet supports (fleet.stacks.translate says what each becomes); any other is
# refused by name rather than silently ignored.
TOP_LEVEL = {"version", "name", "services"}
SERVICE = {"image", "command", "environment", "ports", "healthcheck", "restart", "deploy"}
DEPLOY = {"mode", "replicas", "update_config", "restart_policy", "placement", "resources"}
PLACEMENT = {"constraints"}
RESOURCES = {"limits"}
RESOURCE = {"cpus", "memory"}
MODES = {"replicated"}
# Why some keys are refused, where the reason helps.
WHY = {
    "build": "Fleet does not build images: push it to a registry Fleet can pull from",
    "include": "give Fleet the one file, with what it includes written in",
    "network_mode": "services join the stack's networks",
    "privileged": "Fleet does not run privileged containers",
    "container_name": "Fleet names each replica's container itself",
    "profiles": "every service of a stack is deployed",
    "extends": "write the service out in full",
}


class ComposeError(ValueError):
    """The file cannot be used: `problems` says each thing that is wrong, and where."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems[:MAX_PROBLEMS]
        super().__init__("; ".join(self.problems))


@dataclass
class Loaded:
    """A file that passed every check: its model (interpolated), variables and warnings."""

    model: dict[str, Any]
    env: dict[str, str]
    warnings: list[str] = field(default_factory=list)


def load(text: str, env_text: str = "") -> Loaded:
    """Read, interpolate and check a Compose file; raise ComposeError."""
    for what, value in (("the file", text), ("the .env text", env_text)):
        if not isinstance(value, str):
            raise ComposeError([f"{what} must be text"])
        if len(value.encode()) > MAX_BYTES:
            raise ComposeError([f"{what} is over {MAX_BYTES // 1024} KiB"])
    warnings: list[str] = []
    try:
        env = parse_env(env_text, warnings.append)
    except (EnvError, InterpolationError) as exc:
        raise ComposeError([str(exc)]) from None
    data = parse_yaml(text)
    try:
        model = interpolate_all(data, env, warnings.append)
    except InterpolationError as exc:
        raise ComposeError([str(exc)]) from None
    problems = schema_problems(model) or fleet_problems(model)
    if problems:
        raise ComposeError(problems)
    return Loaded(model, env, warnings)


# YAML 1.2's core schema, as Compose v2 (go-yaml v3) reads a file: PyYAML's safe loader
# speaks YAML 1.1, whose booleans (yes, no, on, off), sexagesimal numbers (80:80) and
# timestamps would turn a port mapping or an environment value into something else.
class _Loader(yaml.SafeLoader):
    pass


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag
        not in (
            "tag:yaml.org,2002:bool",
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
            "tag:yaml.org,2002:timestamp",
        )
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if text.startswith(("0o", "0x")):
        return int(text, 0)
    return int(text, 10)  # "017" is 17 in YAML 1.2, not octal


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *defaults`: its keys may be overridden, as in Compose
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) or key is None:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a string", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return {str(k): v for k, v in loader.construct_mapping(node, deep=True).items()}


_Loader.add_constructor("tag:yaml.org,2002:int", _int)
_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)


def parse_yaml(text: str) -> dict[str, Any]:
    """The file's one YAML document, as a mapping; raise ComposeError."""
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))  # noqa: S506  # a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "the file"
        raise ComposeError([f"{where}: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ComposeError([f"the file is not YAML: {exc}"]) from None
    except RecursionError:
        raise ComposeError(["the file is nested too deeply"]) from None
    if len(documents) != 1:
        raise ComposeError([f"the file holds {len(documents)} YAML documents, not one"])
    data = documents[0]
    if not isinstance(data, dict):
        raise ComposeError(["the file must be a mapping (services: ...)"])
    if _count(data) > MAX_VALUES:
        raise ComposeError([f"the file expands to over {MAX_VALUES} values (through aliases?)"])
    return data


def _count(value: Any, limit: int = MAX_VALUES) -> int:
    """How many values `value` holds, counted up to just past `limit` (aliases expanded)."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        total += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return total


@cache
def _validator() -> Draft7Validator:
    return Draft7Validator(json.loads(SCHEMA.read_text()))


def where(path: Iterator[Any] | Any) -> str:
    """services.web.ports[0] from a path of keys and indexes."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the file"


def schema_problems(model: dict[str, Any]) -> list[str]:
    """What the Compose Specification's schema finds wrong, each with where it is."""
    found = []
    for error in sorted(_validator().iter_errors(model), key=lambda e: list(map(str, e.path))):
        precise: ValidationError = best_match(error.context) if error.context else error
        at = where(precise.absolute_path)
        schema = precise.schema
        if (
            precise.validator == "additionalProperties"
            and isinstance(precise.instance, dict)
            and isinstance(schema, dict)
        ):
            found += [
                f"{at}.{key}: not a key the Compose Specification knows here"
                for key in _unknown(precise.instance, schema)
            ]
        else:
            found.append(f"{at}: {precise.message}")
    return found


def _unknown(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """The keys of `instance` that its schema's properties and patterns do not admit."""
    known, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    return [
        key for key in instance if key not in known and not any(re.search(p, key) for p in patterns)
    ]


def fleet_problems(model: dict[str, Any]) -> list[str]:
    """What a valid Compose file asks of Fleet that Fleet does not do."""
    found = [
        _refused(key, key) for key in model if key not in TOP_LEVEL and not key.startswith("x-")
    ]
    services = model.get("services") or {}
    if not services:
        found.append("services: a stack needs at least one service")
    for name, service in services.items():
        at = f"services.{name}"
        found += [
            _refused(f"{at}.{key}", key)
            for key in service
            if key not in SERVICE and not key.startswith("x-")
        ]
        if "image" not in service:
            found.append(f"{at}: needs an image ({WHY['build']})")
        found += _deploy_problems(f"{at}.deploy", service.get("deploy") or {})
    return found


def _deploy_problems(at: str, deploy: dict[str, Any]) -> list[str]:
    found = [_refused(f"{at}.{key}", key) for key in deploy if key not in DEPLOY]
    mode = deploy.get("mode", "replicated")
    if mode not in MODES:
        found.append(f"{at}.mode: {mode!r}: Fleet runs 'replicated' services")
    placement = deploy.get("placement") or {}
    found += [_refused(f"{at}.placement.{key}", key) for key in placement if key not in PLACEMENT]
    resources = deploy.get("resources") or {}
    found += [_refused(f"{at}.resources.{key}", key) for key in resources if key not in RESOURCES]
    for kind in RESOURCES & set(resources):
        found += [
            _refused(f"{at}.resources.{kind}.{key}", key)
            for key in resources[kind] or {}
            if key not in RESOURCE
        ]
    return found


def _refused(at: str, key: str) -> str:
    return f"{at}: Fleet does not support {key!r}" + (f" ({WHY[key]})" if key in WHY else "")
