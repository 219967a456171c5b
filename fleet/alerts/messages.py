"""What each alert says: a title and a body, from the incident and the signal (pure)."""

from datetime import datetime

from fleet.alerts import rules

OPENED_TITLES = {
    rules.NODE_DOWN: "node {subject} is down",
    rules.DEGRADED: "service {subject} is degraded",
    rules.CRASH_LOOPING: "service {subject} has a replica crash-looping",
    rules.DEPLOYMENT_FAILED: "deployment of {subject} failed",
    rules.METRIC: "{subject} crossed its threshold",
}
ROLLED_BACK_TITLE = "deployment of {subject} failed and was rolled back"
RESOLVED_TITLES = {
    rules.NODE_DOWN: "node {subject} is up again",
    rules.DEGRADED: "service {subject} has recovered",
    rules.CRASH_LOOPING: "service {subject} is no longer crash-looping",
    rules.DEPLOYMENT_FAILED: "deployment of {subject} succeeded",
    rules.METRIC: "{subject} is back within its threshold",
}
PREFIX = "[Fleet]"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _took(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def opened(kind: str, subject: str, topic: str, text: str, at: datetime) -> tuple[str, str]:
    """The alert when an incident opens: (title, body)."""
    template = ROLLED_BACK_TITLE if topic == "deployment.rolled_back" else OPENED_TITLES[kind]
    title = f"{PREFIX} {template.format(subject=subject)}"
    body = f"Since {_when(at)}.\n{text}".strip()
    return title, body


def resolved(
    kind: str, subject: str, opened_at: datetime, at: datetime, occurrences: int, text: str
) -> tuple[str, str]:
    """The one message when it clears: (title, body), with how long and how often."""
    title = f"{PREFIX} Resolved: {RESOLVED_TITLES[kind].format(subject=subject)}"
    lines = [f"Open {_took((at - opened_at).total_seconds())}, from {_when(opened_at)}."]
    if occurrences > 1:
        lines.append(f"It happened {occurrences} times in that span (grouped as one incident).")
    if text:
        lines.append(text)
    return title, "\n".join(lines)


NOTICE_TITLES = {
    "deployment.succeeded": "deployment of {subject} succeeded",
    "deployment.rolled_back": "{subject} was rolled back",
    rules.IMAGE_UPDATE: "a newer image of {subject} is available",
}


def notice(topic: str, subject: str, text: str, at: datetime) -> tuple[str, str]:
    """A notice that opens nothing (a deployment that succeeded): (title, body)."""
    template = NOTICE_TITLES.get(topic, topic + " {subject}")
    return f"{PREFIX} {template.format(subject=subject)}", f"At {_when(at)}.\n{text}".strip()


def test(channel_name: str, at: datetime) -> tuple[str, str]:
    title = f"{PREFIX} Test message to {channel_name}"
    return title, f"Sent from Fleet at {_when(at)}: this channel receives Fleet's alerts."
