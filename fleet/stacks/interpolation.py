"""Variables in a Compose file, as Compose interpolates them, and the `.env` text that sets them.

The rules are the Compose Specification's (compose_spec/12-interpolation.md): `$VAR` and
`${VAR}`; `${VAR:-default}` (unset or empty) and `${VAR-default}` (unset); `${VAR:?error}`
and `${VAR?error}`, which refuse the file; `${VAR:+other}` and `${VAR+other}`, their
opposites; defaults and messages nest (`${A:-${B:-x}}`); `$$` is a literal `$`; a `$` that
starts no variable stays as it is; an unset variable without a default is an empty string,
with a warning. Values are interpolated, never keys.

One difference, on purpose: the variables come from the stack's own `.env` text alone,
never from the environment of Fleet's processes, which holds Fleet's own secrets.
"""

import re
from collections.abc import Callable
from typing import Any

NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A variable the file requires is missing, or a `${...}` is malformed."""


def interpolate(text: str, env: dict[str, str], where: str, warn: Callable[[str], None]) -> str:
    """`text` with its variables replaced from `env`; `where` names it in errors and
    warnings (e.g. "services.web.image"), and `warn` takes each warning."""
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        following = text[i + 1 : i + 2]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            end = _closing(text, i + 2)
            if end is None:
                raise InterpolationError(f"{where}: {text[i:]!r} has no closing brace")
            out.append(_braced(text[i + 2 : end], env, where, warn))
            i = end + 1
        elif match := NAME.match(text, i + 1):
            out.append(_value(match.group(), env, where, warn))
            i = match.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _closing(text: str, start: int) -> int | None:
    """The index of the brace that closes a `${` whose body begins at `start`."""
    depth, i = 1, start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _braced(body: str, env: dict[str, str], where: str, warn: Callable[[str], None]) -> str:
    match = NAME.match(body)
    if match is None:
        raise InterpolationError(f"{where}: invalid interpolation format ${{{body}}}")
    name, rest = match.group(), body[match.end() :]
    if not rest:
        return _value(name, env, where, warn)
    operator = next((op for op in OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise InterpolationError(f"{where}: invalid interpolation format ${{{body}}}")
    argument = rest[len(operator) :]
    value = env.get(name)
    holds = bool(value) if operator.startswith(":") else value is not None
    if operator.endswith("-"):
        return value if holds else interpolate(argument, env, where, warn)  # type: ignore[return-value]  # holds: not None
    if operator.endswith("+"):
        return interpolate(argument, env, where, warn) if holds else ""
    if holds:
        return value  # type: ignore[return-value]  # holds: not None
    message = interpolate(argument, env, where, warn) or (
        "it is not set" if value is None else "it is empty"
    )
    raise InterpolationError(f"{where}: required variable {name}: {message}")


def _value(name: str, env: dict[str, str], where: str, warn: Callable[[str], None]) -> str:
    if name not in env:
        warn(f"{where}: variable {name} is not set; an empty string is used")
        return ""
    return env[name]


def interpolate_all(
    value: Any, env: dict[str, str], warn: Callable[[str], None], where: str = ""
) -> Any:
    """Every string value of a parsed file interpolated (keys left as they are)."""
    if isinstance(value, str):
        return interpolate(value, env, where or "the file", warn)
    if isinstance(value, dict):
        return {
            key: interpolate_all(item, env, warn, f"{where}.{key}" if where else str(key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [interpolate_all(item, env, warn, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


class EnvError(ValueError):
    """A line of `.env` text that is not `NAME=value`."""


ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$$"}


def parse_env(text: str, warn: Callable[[str], None]) -> dict[str, str]:
    """The variables of `.env` text, as Compose reads such a file: `NAME=value` lines
    (`export ` before the name is allowed), `#` comments, values unquoted (trimmed, a
    ` #` ends them), in single quotes (literal) or in double quotes (escapes, and lines
    on); unquoted and double-quoted values may use the variables set above them (one
    not set there is an empty string, and a warning to `warn`)."""
    env: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        number, line = i + 1, lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, equals, raw = line.partition("=")
        name = name.strip()
        if not NAME.fullmatch(name):
            raise EnvError(f".env line {number}: {name!r} is not a variable name")
        if not equals:
            raise EnvError(
                f".env line {number}: {name} has no '=' and no value (Fleet takes no value "
                f"from its own environment)"
            )
        raw = raw.lstrip()
        where = f".env line {number}"
        if raw.startswith("'"):
            end = raw.find("'", 1)
            if end < 0:
                raise EnvError(f"{where}: the single quote is never closed")
            env[name] = raw[1:end]
        elif raw.startswith('"'):
            body, consumed = _double_quoted(raw[1:], lines, i, number)
            i += consumed
            env[name] = interpolate(body, env, where, warn)
        else:
            value = re.split(r"\s#", raw, maxsplit=1)[0].strip()
            env[name] = interpolate(value, env, where, warn)
    return env


def _double_quoted(rest: str, lines: list[str], i: int, number: int) -> tuple[str, int]:
    """The body of a double-quoted value begun on line `number` (escapes applied, `$$`
    kept for interpolation) and how many more lines it took."""
    out: list[str] = []
    consumed = 0
    while True:
        j = 0
        while j < len(rest):
            char = rest[j]
            if char == "\\" and j + 1 < len(rest):
                out.append(ESCAPES.get(rest[j + 1], "\\" + rest[j + 1]))
                j += 2
                continue
            if char == '"':
                return "".join(out), consumed
            out.append(char)
            j += 1
        if i + consumed >= len(lines):
            raise EnvError(f".env line {number}: the double quote is never closed")
        out.append("\n")
        rest = lines[i + consumed]
        consumed += 1
