"""A page opened past the user's sockets limit says why, and does not retry at once."""

import time

import pytest
from django.conf import settings
from websockets.sync.client import connect

from tests.conftest import token_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_page_past_the_users_sockets_limit_says_why_and_waits_before_trying_again(
    page, admin_user
):
    # The page holds one socket; programs of the same user take the rest.
    url = page.base.replace("http://", "ws://") + "/ws/fleet/"
    headers = {"Authorization": f"Token {token_for(admin_user)}", "Origin": page.base}
    held = [
        connect(url, additional_headers=headers, open_timeout=10)
        for _ in range(settings.FLEET_SOCKETS_PER_USER - 1)
    ]
    try:
        for socket in held:
            socket.recv(timeout=10)  # the snapshot: the place is taken
        other = page.context.new_page()
        attempts = []
        other.on("websocket", lambda socket: attempts.append(time.monotonic()))
        other.goto(f"{page.base}/")
        other.wait_for_function("() => document.body.dataset.live === 'refused'")
        notice = other.inner_text("#notice")
        time.sleep(5)  # a page that retried every second would have tried five times more
        assert len(attempts) == 1, attempts
        assert notice.startswith("Live updates are off: ")
        assert f"{settings.FLEET_SOCKETS_PER_USER} live pages or consoles of yours" in notice
        assert page.evaluate("document.body.dataset.live") == "on", "the first page keeps its"
    finally:
        for socket in held:
            socket.close()
