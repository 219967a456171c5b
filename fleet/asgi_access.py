"""Logs without deploy webhooks' secrets: a webhook's path is its secret.

Daphne writes every request's path to its access log (stdout, at its default verbosity)
and offers no filter, so its log writer is wrapped once, when the ASGI app loads. Every
other log line (Django's "Internal Server Error: <path>" on a server error, a traceback
that names the path) goes through LOGGING's handlers, each of which has RedactSecrets.
Either way a path under /hooks/deploy/ is written with the secret replaced by "<secret>".
"""

import logging
import re

HOOK_PATH = re.compile(r"(/hooks/deploy/)[^\s\"]*")


def redact(text):
    """The text with every webhook secret in a path replaced by "<secret>"."""
    return HOOK_PATH.sub(r"\1<secret>", text)


class RedactSecrets(logging.Filter):
    """A handler's filter: the record's message, traceback and stack with every webhook
    secret redacted (the record is changed in place, for every handler after this one)."""

    def filter(self, record):
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install():
    """Make daphne's access log redact webhook secrets (again: a no-op)."""
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:  # served by something else: nothing of daphne's to wrap
        return
    original = AccessLogGenerator.write_entry
    if getattr(original, "redacts", False):
        return

    def write_entry(self, host, date, request, *args, **kwargs):
        return original(self, host, date, redact(request), *args, **kwargs)

    write_entry.redacts = True
    AccessLogGenerator.write_entry = write_entry
