"""The session and CSRF cookies say which requests from other sites may carry them."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_login_sets_a_lax_session_and_a_strict_csrf_cookie(client, admin_user):
    page = client.get("/login/")
    assert page.cookies["csrftoken"]["samesite"] == "Strict"
    response = client.post(
        "/login/",
        {
            "username": "root",
            "password": "root-pass-123",
            "csrfmiddlewaretoken": page.cookies["csrftoken"].value,
        },
    )
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["samesite"] == "Lax"
    assert session["httponly"] is True
