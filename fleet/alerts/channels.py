"""What admins do to alert channels, through every door: checked, saved, audited.

A URL is checked with Apprise before anything is saved (a bad one changes
nothing); the audit Event names the channel and its redacted URL, never the URL.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from fleet import notify
from fleet.models import Actor, Event, EventKind
from fleet.models.alerts import AlertChannel, Topic


def clean_url(url: str) -> str:
    """The URL to store, or ValidationError with Apprise's reason (secrets taken out)."""
    try:
        return notify.check(url)
    except notify.BadURL as exc:
        raise ValidationError(str(exc)) from None


def clean_events(events: object) -> list[str]:
    """The topics a channel receives: known ones, each once, in the order given."""
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise ValidationError("events must be a list of topics.")
    unknown = [e for e in events if e not in Topic.values]
    if unknown:
        raise ValidationError(
            f"Unknown event(s) {', '.join(map(repr, unknown[:5]))}; choose from "
            f"{', '.join(Topic.values)}."
        )
    return list(dict.fromkeys(events))


def _what(channel: AlertChannel) -> str:
    topics = ", ".join(channel.events) or "nothing"
    state = "enabled" if channel.enabled else "disabled"
    return f"channel {channel.name}: {channel.redacted_url}, {state}, receives {topics}"


@transaction.atomic
def create(channel: AlertChannel, actor: Actor) -> AlertChannel:
    channel.save()
    Event.objects.record(EventKind.ALERT_CHANNEL_CREATED, actor=actor, reason=_what(channel))
    return channel


@transaction.atomic
def update(channel: AlertChannel, changes: dict[str, Any], actor: Actor) -> AlertChannel:
    """Apply checked changes; a URL in `changes` replaces the stored one."""
    replaced = "url" in changes and changes["url"] != channel.url
    for field, value in changes.items():
        setattr(channel, field, value)
    channel.save()
    note = " (URL replaced)" if replaced else ""
    Event.objects.record(EventKind.ALERT_CHANNEL_CHANGED, actor=actor, reason=_what(channel) + note)
    return channel


@transaction.atomic
def delete(channel: AlertChannel, actor: Actor) -> None:
    what = _what(channel)
    channel.delete()
    Event.objects.record(EventKind.ALERT_CHANNEL_DELETED, actor=actor, reason=what)
