"""A checked Compose model (fleet.stacks.compose) -> the service specs Fleet deploys.

Each Compose service becomes the spec a client would post to /api/services/ (the service
spec's own validation still runs on it): the Compose forms are turned into Fleet's, e.g.
`ports: ["8080:80/udp"]` into `[{"container": 80, "published": 8080, "protocol": "udp"}]`,
`restart: unless-stopped` into `restart_policy: any`, a Swarm-style constraint
`node.labels.zone==a` into `zone==a`. What cannot be said in Fleet's terms is a problem
named with where it is, never dropped.
"""

import shlex
from typing import Any

from fleet.stacks.compose import ComposeError
from fleet.stacks.units import seconds, size

MAX_PORTS = 32  # as a service spec allows
# Compose's `restart` -> Fleet's restart policy.
RESTARTS = {"no": "none", "always": "any", "unless-stopped": "any", "on-failure": "on-failure"}
# Swarm's constraint keys -> Fleet's (node labels are named without their prefix).
CONSTRAINT_KEYS = {
    "node.hostname": "node.name",
    "node.platform.os": "node.os",
    "node.platform.arch": "node.arch",
}


def service_specs(model: dict[str, Any], env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """{Compose service name: Fleet service spec (without its name)}; raise ComposeError
    with every problem found."""
    specs, problems = {}, []
    for name, service in model["services"].items():
        found: list[str] = []
        specs[name] = _spec(f"services.{name}", service, env, found)
        problems += found
    if problems:
        raise ComposeError(problems)
    return specs


def _spec(at: str, service: dict[str, Any], env: dict[str, str], problems: list[str]) -> dict:
    spec: dict[str, Any] = {"image": service["image"]}

    def attempt(key: str, convert: Any, value: Any) -> None:
        try:
            spec[key] = convert(value)
        except ValueError as exc:
            problems.append(f"{at}{exc}" if str(exc).startswith(("[", ".")) else f"{at}: {exc}")

    if "command" in service:
        attempt("command", _command, service["command"])
    if "environment" in service:
        attempt("env", lambda v: _environment(v, env), service["environment"])
    if "ports" in service:
        attempt("ports", _ports, service["ports"])
    if "healthcheck" in service:
        attempt("healthcheck", _healthcheck, service["healthcheck"])
    if "restart" in service:
        attempt("restart_policy", _restart, service["restart"])
    deploy = service.get("deploy") or {}
    if "replicas" in deploy:
        spec["replicas"] = deploy["replicas"]
    if "restart_policy" in deploy:
        attempt("restart_policy", _restart_policy, deploy["restart_policy"])
    if "update_config" in deploy:
        attempt("update", _update, deploy["update_config"])
    if "constraints" in (deploy.get("placement") or {}):
        attempt("constraints", _constraints, deploy["placement"]["constraints"])
    if "limits" in (deploy.get("resources") or {}):
        attempt("resources", _limits, deploy["resources"]["limits"] or {})
    return spec


def _command(value: str | list[str] | None) -> list[str]:
    """A command as Compose takes it: a list as it is, a string split as a shell would."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(part) for part in value]
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise ValueError(f".command: {value!r} cannot be split into words: {exc}") from None


def _scalar(value: Any) -> str:
    """A YAML scalar as Compose writes it into the environment (true, not True)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _environment(value: dict[str, Any] | list[str], env: dict[str, str]) -> dict[str, str]:
    """KEY: value pairs or KEY=value items; a KEY without a value takes the stack's .env
    value, as Compose takes the project's, and is left out when that is not set either."""
    pairs: list[tuple[str, Any]]
    if isinstance(value, dict):
        pairs = list(value.items())
    else:
        pairs = [
            (item.partition("=")[0], item.partition("=")[2] if "=" in item else None)
            for item in value
        ]
    out = {}
    for key, item in pairs:
        if item is None:
            if key in env:
                out[key] = env[key]
            continue
        out[key] = _scalar(item)
    return out


def _ports(value: list[Any]) -> list[dict[str, Any]]:
    ports: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        try:
            ports += _long_port(item) if isinstance(item, dict) else _short_port(str(item))
        except ValueError as exc:
            sep = "" if str(exc).startswith(".") else ": "
            raise ValueError(f".ports[{i}]{sep}{exc}") from None
    if len(ports) > MAX_PORTS:
        raise ValueError(f".ports: {len(ports)} ports; a service publishes at most {MAX_PORTS}")
    return ports


def _range(text: str) -> list[int]:
    low, dash, high = text.partition("-")
    if not (low.isdigit() and (not dash or high.isdigit())):
        raise ValueError(f"{text!r} is not a port or a range of ports")
    first, last = int(low), int(high) if dash else int(low)
    if not 1 <= first <= last <= 65535:
        raise ValueError(f"{text!r} is not a port or a range of ports from 1 to 65535")
    return list(range(first, last + 1))


def _short_port(text: str) -> list[dict[str, Any]]:
    """ "[HOST:]CONTAINER[/PROTOCOL]", either side a port or a range."""
    body, _, protocol = text.partition("/")
    protocol = protocol or "tcp"
    if protocol not in ("tcp", "udp"):
        raise ValueError(f"{text!r}: Fleet publishes tcp or udp, not {protocol}")
    parts = body.split(":")
    if len(parts) > 2:
        raise ValueError(
            f"{text!r} names a host address: Fleet publishes on every address of the node"
        )
    containers = _range(parts[-1])
    hosts: list[int | None] = [None] * len(containers)
    if len(parts) == 2:
        hosts = list(_range(parts[0]))
        if len(hosts) != len(containers):
            if len(hosts) > 1:
                raise ValueError(f"{text!r}: the two ranges are not of one length")
            raise ValueError(f"{text!r}: one host port for several container ports")
    return [
        {"container": c, "published": h, "protocol": protocol}
        for c, h in zip(containers, hosts, strict=True)
    ]


def _long_port(item: dict[str, Any]) -> list[dict[str, Any]]:
    for key in ("host_ip", "app_protocol", "name"):
        if key in item:
            raise ValueError(f".{key}: Fleet does not support {key!r} on a port")
    if item.get("mode", "host") != "host":
        raise ValueError(
            f".mode: {item['mode']!r}: Fleet publishes a port on the replica's own node "
            "(mode: host); its ingress routes requests across nodes"
        )
    protocol = item.get("protocol", "tcp")
    if protocol not in ("tcp", "udp"):
        raise ValueError(f".protocol: Fleet publishes tcp or udp, not {protocol}")
    published = item.get("published")
    host = f"{published}:" if published not in (None, "") else ""
    return _short_port(f"{host}{item['target']}/{protocol}")


def _healthcheck(value: dict[str, Any]) -> dict[str, Any] | None:
    if value.get("disable"):
        return None
    if "start_interval" in value:
        raise ValueError(".healthcheck.start_interval: Fleet does not support 'start_interval'")
    test = value.get("test")
    if test is None:
        raise ValueError(".healthcheck.test: give the command (Fleet does not read the image's)")
    if isinstance(test, str):
        command = ["CMD-SHELL", test]
    elif test and test[0] == "NONE":
        return None
    else:
        command = list(test)
    check: dict[str, Any] = {"command": command}
    check.update(_durations(value, ("interval", "timeout", "start_period"), ".healthcheck"))
    if "retries" in value:
        check["retries"] = value["retries"]
    return check


def _durations(value: dict[str, Any], keys: tuple[str, ...], at: str) -> dict[str, float]:
    """{key: seconds} of those of `keys` that `value` gives, each a Go duration."""
    found = {}
    for key in keys:
        if key in value:
            try:
                found[key] = seconds(value[key])
            except ValueError as exc:
                raise ValueError(f"{at}.{key}: {exc}") from None
    return found


def _restart(value: str) -> str:
    if value not in RESTARTS:
        raise ValueError(
            f".restart: {value!r}: use no, always, unless-stopped or on-failure (Fleet retries "
            "with a backoff of its own, not a count)"
        )
    return RESTARTS[value]


def _restart_policy(value: dict[str, Any]) -> str:
    for key in ("delay", "max_attempts", "window"):
        if key in value:
            raise ValueError(
                f".deploy.restart_policy.{key}: Fleet does not support {key!r} (it retries "
                "with a backoff of its own)"
            )
    return value.get("condition", "any")


def _update(value: dict[str, Any]) -> dict[str, Any]:
    update: dict[str, Any] = {}
    if "parallelism" in value:
        if value["parallelism"] == 0:
            raise ValueError(
                ".deploy.update_config.parallelism: 0 (all at once) is not a rolling update; "
                "give how many replicas to update at a time"
            )
        update["parallelism"] = value["parallelism"]
    update.update(_durations(value, ("delay", "monitor"), ".deploy.update_config"))
    if "order" in value:
        update["order"] = value["order"]
    if "failure_action" in value:
        if value["failure_action"] not in ("rollback", "pause"):
            raise ValueError(
                f".deploy.update_config.failure_action: {value['failure_action']!r}: Fleet "
                "rolls back or pauses a failed update"
            )
        update["failure_action"] = value["failure_action"]
    if value.get("max_failure_ratio"):
        raise ValueError(
            ".deploy.update_config.max_failure_ratio: Fleet stops an update at its first "
            "failed replica"
        )
    return update


def _constraints(value: list[str]) -> list[str]:
    out = []
    for i, text in enumerate(value):
        key, op, rest = _split_constraint(text)
        if key.startswith("node.labels."):
            key = key[len("node.labels.") :]
        elif key in CONSTRAINT_KEYS:
            key = CONSTRAINT_KEYS[key]
        elif key != "node.name":
            raise ValueError(
                f".deploy.placement.constraints[{i}]: {text!r}: Fleet places by node.labels.*, "
                "node.hostname, node.platform.os and node.platform.arch"
            )
        out.append(f"{key}{op}{rest}")
    return out


def _split_constraint(text: str) -> tuple[str, str, str]:
    for op in ("==", "!="):
        key, found, rest = text.partition(op)
        if found:
            return key.strip(), op, rest.strip()
    raise ValueError(f".deploy.placement.constraints: {text!r} has no == or !=")


def _limits(value: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if "cpus" in value:
        try:
            resources["cpus"] = float(value["cpus"])
        except (TypeError, ValueError):
            raise ValueError(
                f".deploy.resources.limits.cpus: {value['cpus']!r} is not a number"
            ) from None
    if "memory" in value:
        try:
            resources["memory_bytes"] = size(value["memory"])
        except ValueError as exc:
            raise ValueError(f".deploy.resources.limits.memory: {exc}") from None
    return resources
