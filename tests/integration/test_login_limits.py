"""Repeated failed logins lock out that user name from that address (django-axes), on the
login page, the admin's login and the API's token endpoint alike."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db

RIGHT = "root-pass-123"
LIMIT = settings.FLEET_LOGIN_FAILURE_LIMIT


def login(path, username, password, ip="192.0.2.10"):
    client = Client(REMOTE_ADDR=ip)
    return client.post(path, {"username": username, "password": password}), client


def logged_in(client):
    return "_auth_user_id" in client.session


def fail(path, times, username="root", ip="192.0.2.10"):
    for _ in range(times):
        response, _ = login(path, username, "wrong-password", ip)
        # The failure that reaches the limit is itself answered with the lockout.
        assert response.status_code in (200, 400, 429), response.status_code


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_after_the_limit_even_the_right_password_is_refused_with_429(admin_user, path):
    fail(path, LIMIT)
    response, client = login(path, "root", RIGHT)
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed logins" in page
    assert "root" in page
    assert RIGHT not in page
    assert not logged_in(client)


def test_the_token_endpoint_is_locked_out_too(admin_user):
    fail("/api/auth/token/", LIMIT)
    response, _ = login("/api/auth/token/", "root", RIGHT)
    assert response.status_code == 429
    assert "locked" in response.json()["detail"].lower()
    assert int(response["Retry-After"]) == int(settings.FLEET_LOGIN_COOLOFF)
    assert "token" not in response.json()


def test_one_failure_short_of_the_limit_still_lets_the_right_password_in(admin_user):
    fail("/login/", LIMIT - 1)
    response, client = login("/login/", "root", RIGHT)
    assert response.status_code == 302
    assert logged_in(client)


def test_a_lockout_touches_neither_another_user_nor_another_address(admin_user, viewer):
    fail("/login/", LIMIT)
    response, client = login("/login/", "viewer", "viewer-pass-123")
    assert response.status_code == 302 and logged_in(client)
    response, client = login("/login/", "root", RIGHT, ip="192.0.2.99")
    assert response.status_code == 302 and logged_in(client)
    response, client = login("/login/", "root", RIGHT)
    assert response.status_code == 429


def test_a_successful_login_resets_the_count(admin_user):
    fail("/login/", LIMIT - 1)
    assert login("/login/", "root", RIGHT)[0].status_code == 302
    fail("/login/", LIMIT - 1)
    response, client = login("/login/", "root", RIGHT)
    assert response.status_code == 302 and logged_in(client)


def test_the_lockout_ends_after_the_cool_off(admin_user, settings):
    import time

    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    fail("/login/", LIMIT)
    assert login("/login/", "root", RIGHT)[0].status_code == 429
    time.sleep(1.2)
    response, client = login("/login/", "root", RIGHT)
    assert response.status_code == 302 and logged_in(client)


def test_a_user_name_longer_than_any_is_a_400_before_it_is_counted():
    from axes.models import AccessAttempt

    response = Client().post(
        "/api/auth/token/",
        {"username": "u" * 300, "password": "x"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "username" in response.json()
    assert not AccessAttempt.objects.exists()
