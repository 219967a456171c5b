"""Daphne's access log never shows a deploy webhook's secret."""

import io

from daphne.access import AccessLogGenerator

from fleet.asgi_access import install, redact


def test_a_webhook_path_loses_its_secret_and_other_paths_stay_as_they_are():
    assert redact("POST /hooks/deploy/abc-DEF_123") == "POST /hooks/deploy/<secret>"
    assert redact("POST /hooks/deploy/abc?x=1") == "POST /hooks/deploy/<secret>"
    assert redact("GET /api/services/web/webhooks/") == "GET /api/services/web/webhooks/"


def test_daphnes_access_log_writes_the_path_without_the_secret():
    install()
    install()  # twice is once
    stream = io.StringIO()
    log = AccessLogGenerator(stream)
    details = {"client": "127.0.0.1:1", "method": "POST", "path": "/hooks/deploy/s3cr3t-value"}
    log("http", "complete", {**details, "status": 202, "size": 96})
    line = stream.getvalue()
    assert "s3cr3t-value" not in line
    assert '"POST /hooks/deploy/<secret>" 202 96' in line
