"""The units a Compose file writes: Go durations ("1m30s", "500ms") and sizes ("256M", "1g")."""

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$", re.IGNORECASE)
_POWERS = {None: 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def seconds(text: str) -> float:
    """Seconds in a Go duration such as "1m30s", "1.5s" or "250ms"; raise ValueError."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"{text!r} is not a duration such as 30s, 1m30s or 500ms")
    if text == "0":
        return 0.0
    total, at = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != at:
            break
        total += float(match[1]) * _SECONDS[match[2]]
        at = match.end()
    if at != len(text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 1m30s or 500ms")
    return total


def size(value: str | int) -> int:
    """Bytes in a size such as 256M, 1g, 512mb or 1024 (powers of 1024); raise ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a size such as 512m, 1g or 1048576")
    unit = match[2].lower() if match[2] else None
    return int(float(match[1]) * 1024 ** _POWERS[unit])
