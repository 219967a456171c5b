"""Shared fixtures: users and API clients.

Django is set up after conftest files load, so models are imported inside fixtures.
"""

import pytest


@pytest.fixture
def admin_user(db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("root", password="root-pass-123")


@pytest.fixture
def viewer(db):
    """A logged-in user with no permissions beyond reading."""
    from django.contrib.auth.models import User

    return User.objects.create_user("viewer", password="viewer-pass-123")


@pytest.fixture
def operator(db):
    """A user who may change nodes but not add or delete them."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("operator", password="operator-pass-123")
    user.user_permissions.add(Permission.objects.get(codename="change_node"))
    return user


@pytest.fixture
def api(admin_user):
    """An API client authenticated with the admin's token."""
    return api_for(admin_user)


@pytest.fixture
def anon_api():
    from rest_framework.test import APIClient

    return APIClient()


def api_for(user):
    """An API client that sends this user's token."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client
