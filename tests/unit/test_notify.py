"""The Apprise seam: URLs checked before they are saved, and never shown whole."""

import pytest

from fleet import notify


@pytest.mark.parametrize(
    "url",
    [
        "json://127.0.0.1:8080/hook",
        "mailto://user:pw@localhost:2525/?to=ops@example.com",
        "ntfy://alerts",
    ],
)
def test_it_accepts_urls_apprise_can_send_to(url):
    assert notify.check(f"  {url} ") == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "Give an Apprise URL"),
        ("bogus://somewhere", "Unknown scheme 'bogus'"),
        ("127.0.0.1:8080", "needs a scheme"),
        ("json://", "cannot use this json:// URL"),
        ("json://a/x, json://b/y", "One Apprise URL per channel"),
        ("json://127.0.0.1:8080/…", "redacted form"),
        ("json://127.0.0.1/" + "x" * 2000, "at most 2000 characters"),
    ],
)
def test_it_refuses_urls_apprise_cannot_use_and_says_why(url, why):
    with pytest.raises(notify.BadURL, match=why):
        notify.check(url)


def test_a_refusal_never_quotes_the_secret_parts_of_the_url():
    with pytest.raises(notify.BadURL) as refused:
        notify.check("discord://secret-webhook-token")
    assert "secret-webhook-token" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "json://user:hunter22@hooks.example.com/path/token123?key=abcdef",
            "json://hooks.example.com/…",
        ),
        (
            "mailto://ops:hunter22@127.0.0.1:2525/?to=ops@example.com&from=fleet@example.com",
            "mailto://127.0.0.1:2525/…",
        ),
        ("bogus://hunter22", "bogus://…"),
    ],
)
def test_a_stored_url_is_shown_as_scheme_and_host_only(url, shown):
    assert notify.redact(url) == shown


def test_a_token_in_the_host_s_place_is_masked_by_apprise():
    shown = notify.redact("tgram://123456789:AAbbccddeeffgghh/987654")
    assert "AAbbccddeeffgghh" not in shown and "987654" not in shown
    assert shown.startswith("tgram://")


def test_error_text_has_every_secret_part_of_the_url_taken_out():
    url = "json://user:hunter22@10.0.0.1/hooktoken?apikey=s3cr3tvalue"
    text = f"failed to post to {url}: hunter22 hooktoken s3cr3tvalue refused"
    cleaned = notify.redact_text(url, text)
    for secret in ("hunter22", "hooktoken", "s3cr3tvalue"):
        assert secret not in cleaned
    assert cleaned.endswith("refused")


def test_sending_to_a_closed_port_fails_fast_with_a_redacted_reason():
    sent, why = notify.send("json://user:hunter22@127.0.0.1:9/token-abc", "t", "b", timeout=1)
    assert sent is False
    assert "Connection error" in why
    assert "hunter22" not in why and "token-abc" not in why
