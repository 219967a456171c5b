"""Real receivers for alerts, started by the tests: a JSON webhook and an SMTP server.

Import the fixtures into a test module: `from tests.integration.receivers import receivers`.
"""

import email
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller


class Webhook(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that keeps every JSON body posted to it.

    /ok/... answers 200; /fail/... answers 500 (a channel that is down); /slow/... waits
    longer than Fleet's delivery timeout before it answers.
    """

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.received = []  # (path, body)
        self.lock = threading.Lock()

    @property
    def port(self):
        return self.server_address[1]

    def url(self, path="ok/hook"):
        return f"json://127.0.0.1:{self.port}/{path}"

    def bodies(self, path_prefix="/ok"):
        with self.lock:
            return [body for path, body in self.received if path.startswith(path_prefix)]


class _WebhookHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with self.server.lock:
            self.server.received.append((self.path, body))
        if self.path.startswith("/slow"):
            time.sleep(30)
        status = 500 if self.path.startswith("/fail") else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Mailbox:
    """aiosmtpd's handler: every message received, parsed."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def subjects(self):
        return [str(m["Subject"]) for m in self.messages]


class Receivers:
    """Both receivers, and the Apprise URLs that reach them."""

    def __init__(self, webhook, mailbox, smtp_port):
        self.webhook, self.mailbox, self.smtp_port = webhook, mailbox, smtp_port

    def json_url(self, path="ok/hook"):
        return self.webhook.url(path)

    def mail_url(self):
        return f"mailto://127.0.0.1:{self.smtp_port}/?to=ops@example.com&from=fleet@example.com"

    def titles(self):
        """Titles of what the webhook got, and subjects of the mails: (json, mail)."""
        return [b.get("title", "") for b in self.webhook.bodies()], self.mailbox.subjects()


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def receivers():
    """A JSON webhook and an SMTP server on 127.0.0.1 for the whole session."""
    webhook = Webhook()
    thread = threading.Thread(target=webhook.serve_forever, name="webhook", daemon=True)
    thread.start()
    mailbox, port = Mailbox(), _free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    smtp.start()
    yield Receivers(webhook, mailbox, port)
    smtp.stop()
    webhook.shutdown()
    webhook.server_close()


@pytest.fixture
def inbox(receivers):
    """The receivers, emptied for this test."""
    with receivers.webhook.lock:
        receivers.webhook.received.clear()
    receivers.mailbox.messages.clear()
    return receivers
