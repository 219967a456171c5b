"""Apprise, the one door to notification services (email, Slack, ntfy, webhooks ...).

Nothing else imports `apprise`. A channel's URL holds its secrets (tokens,
passwords), so this module is also where a URL is redacted for showing, and where
Apprise's own log lines, which may quote a URL, are caught: they never reach
Fleet's logs; send() returns what went wrong with the secrets taken out.
"""

import functools
import logging
import threading
from urllib.parse import parse_qsl, urlsplit

import apprise

HIDDEN = "…"
MAX_URL = 2000
KINDS = {
    "failure": apprise.NotifyType.FAILURE,
    "success": apprise.NotifyType.SUCCESS,
    "info": apprise.NotifyType.INFO,
}


class BadURL(ValueError):
    """A URL Apprise cannot use: an unknown scheme or missing parts."""


class _Capture(logging.Handler):
    """Apprise's log lines, kept per thread for the call that made them."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.local = threading.local()

    def emit(self, record):
        lines = getattr(self.local, "lines", None)
        if lines is not None and record.levelno >= logging.WARNING:
            lines.append(record.getMessage())

    def start(self):
        self.local.lines = []

    def stop(self):
        lines, self.local.lines = self.local.lines, None
        return lines


_capture = _Capture()
_apprise_log = logging.getLogger("apprise")
_apprise_log.propagate = False  # its lines may quote a URL whole
_apprise_log.setLevel(logging.INFO)
_apprise_log.addHandler(_capture)


def _instantiate(url):
    """Apprise's plugin for one URL, with what Apprise said, or (None, why)."""
    _capture.start()
    try:
        plugin = apprise.Apprise.instantiate(url)
    except Exception as exc:  # a plugin's own parser may raise on odd input
        plugin = None
        _capture.local.lines.append(f"{type(exc).__name__}")
    lines = _capture.stop()
    return plugin, "; ".join(lines)


def check(url):
    """Refuse a URL Apprise cannot send to, with the reason; return it stripped."""
    url = (url or "").strip()
    if not url:
        raise BadURL("Give an Apprise URL, such as json://host/path or mailto://user:pass@host.")
    if len(url) > MAX_URL:
        raise BadURL(f"An Apprise URL of at most {MAX_URL} characters, please.")
    if any(c.isspace() for c in url) or "," in url:
        raise BadURL("One Apprise URL per channel (no spaces or commas); add a channel per URL.")
    if url.endswith(HIDDEN):
        raise BadURL(
            "This is the redacted form of a URL; send the whole URL to replace it, or leave "
            "the url out to keep the one stored."
        )
    plugin, said = _instantiate(url)
    if plugin is None:
        scheme = url.partition("://")[0] if "://" in url else ""
        if not scheme:
            raise BadURL("Not an Apprise URL: it needs a scheme, such as json:// or mailto://.")
        if scheme.lower() not in schemes():
            raise BadURL(f"Unknown scheme {scheme[:20]!r}: Apprise has no service by that name.")
        why = redact_text(url, said).replace(f"{HIDDEN}.", HIDDEN) if said else ""
        raise BadURL(f"Apprise cannot use this {scheme}:// URL{': ' + why if why else ''}")
    return url


@functools.cache
def schemes():
    """Every scheme Apprise knows."""
    found = set()
    for service in apprise.Apprise().details()["schemas"]:
        for key in ("protocols", "secure_protocols"):
            found.update(service.get(key) or ())
    return frozenset(found)


def redact(url):
    """What anyone is shown of a stored URL: its scheme and host, Apprise's own masking of
    the parts it knows to be secret, and nothing of its path or query."""
    scheme = (url or "").partition("://")[0] if "://" in (url or "") else "?"
    plugin, _ = _instantiate(url) if url else (None, "")
    if plugin is None:
        return f"{scheme}://{HIDDEN}"
    try:
        private = urlsplit(plugin.url(privacy=True))
        host = private.hostname or ""
        port = f":{private.port}" if private.port else ""
    except ValueError:
        host = port = ""
    return f"{scheme}://{host}{port}/{HIDDEN}"


def _secrets(url):
    """The parts of a URL that may be secret, longest first."""
    try:
        parts = urlsplit(url)
        pieces = [url, parts.password or "", parts.username or ""]
        if parts.hostname and "." not in parts.hostname:
            pieces.append(parts.netloc)  # a token in the host's place (tgram://TOKEN/...)
        pieces += parts.path.split("/")
        pieces += [value for _, value in parse_qsl(parts.query)]
    except ValueError:
        pieces = [url]
    return sorted({p for p in pieces if len(p) >= 4}, key=len, reverse=True)


def redact_text(url, text):
    """`text` with every secret-looking part of `url` taken out."""
    for secret in _secrets(url):
        text = text.replace(secret, HIDDEN)
    return text


def send(url, title, body, kind="info", timeout=5.0):
    """Send one message; return (sent, why not) with no secret in the reason.

    Connect and read timeouts are `timeout` seconds each: a service that is down or
    slow holds its caller that long at most per attempt.
    """
    plugin, said = _instantiate(url)
    if plugin is None:
        return False, redact_text(url, said or "Apprise cannot use this URL")
    plugin.socket_connect_timeout = timeout
    plugin.socket_read_timeout = timeout
    _capture.start()
    try:
        sent = plugin.notify(body=body, title=title, notify_type=KINDS.get(kind, KINDS["info"]))
    except Exception as exc:  # a plugin's bug is a failed delivery, not a crashed worker
        sent = False
        _capture.local.lines.append(f"{type(exc).__name__}: {exc}")
    lines = _capture.stop()
    if sent:
        return True, ""
    return False, redact_text(url, "; ".join(lines)[:2000] or "the service refused the message")
