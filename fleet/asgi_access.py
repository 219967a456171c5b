"""Daphne's access log without deploy webhooks' secrets.

Daphne writes every request's path to its access log (stdout, at its default verbosity),
and a deploy webhook's path is its secret. Daphne offers no filter, so its log writer is
wrapped once, when the ASGI app loads: a path under /hooks/deploy/ is written with the
secret replaced by "<secret>". Django's own request logger is kept off those paths by the
hook view itself (fleet.api.hooks).
"""

import re

HOOK_PATH = re.compile(r"(/hooks/deploy/)[^\s\"]*")


def redact(text):
    """The text with every webhook secret in a path replaced by "<secret>"."""
    return HOOK_PATH.sub(r"\1<secret>", text)


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
