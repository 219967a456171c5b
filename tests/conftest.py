"""Shared fixtures: users and API clients.

Django is set up after conftest files load, so models are imported inside fixtures.
"""

import functools
import tempfile
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _flush_tried_again_after_a_deadlock():
    """A transactional test's database is emptied (TRUNCATE on PostgreSQL) while a process
    of Fleet's may still be reading and writing it: when a transaction of theirs holds one
    table and waits for another that the TRUNCATE took, PostgreSQL ends one of the two
    ("deadlock detected"). The TRUNCATE, if it is the one, is rolled back whole and tried
    again; the process's side is a transaction Fleet retries as after any database error."""
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def deadlocked(exc):
        # flush's CommandError says only that it failed: the deadlock is in its causes.
        while exc is not None:
            if "deadlock detected" in str(exc):
                return True
            exc = exc.__cause__ or exc.__context__
        return False

    def teardown(self):
        for attempt in range(5):
            try:
                return original(self)
            except Exception as exc:
                if not deadlocked(exc) or attempt == 4:
                    raise
                time.sleep(0.2)

    TransactionTestCase._fixture_teardown = teardown
    yield
    TransactionTestCase._fixture_teardown = original


@pytest.fixture(autouse=True)
def _live_changes_sent(request):
    """A test's live changes are sent before its database is emptied: the sender thread
    reading rows while the flush truncates the tables can deadlock on PostgreSQL."""
    marked = request.node.get_closest_marker("django_db")
    if marked or "transactional_db" in request.fixturenames:
        request.getfixturevalue("_django_db_helper")  # set up first, so emptied after this
    yield
    from fleet import live

    live.wait_idle(10)


@pytest.fixture
def admin_user(db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("root", password="root-pass-123")


def user_with_role(name, role):
    """A user in the role's group, as an admin would set it up (no audit Event, to keep
    the tests' event counts about what they do)."""
    from django.contrib.auth.models import Group, User

    from fleet.access import roles

    roles.sync_groups()
    user = User.objects.create_user(name, password=f"{name}-pass-123", is_staff=bool(role))
    if role:
        user.groups.add(Group.objects.get(name=roles.GROUP_NAMES[role]))
    return user


@pytest.fixture
def viewer(db):
    """A user with the viewer role: reads everything, changes nothing."""
    return user_with_role("viewer", "viewer")


@pytest.fixture
def operator(db):
    """A user with the operator role: acts on services, not on nodes or users."""
    return user_with_role("operator", "operator")


@pytest.fixture
def fleet_admin(db):
    """A user with the admin role (not a superuser): everything."""
    return user_with_role("boss", "admin")


@pytest.fixture
def nobody(db):
    """A logged-in user with no role: sees nothing."""
    return user_with_role("nobody", None)


@pytest.fixture
def api(admin_user):
    """An API client authenticated with the admin's token."""
    return api_for(admin_user)


@pytest.fixture
def anon_api():
    from rest_framework.test import APIClient

    return APIClient()


def token_for(user, name="test"):
    """A new API token of the user, as its owner would get it (made without an event, to
    keep the tests' event counts about what they do)."""
    from fleet.models import ApiToken

    return ApiToken.objects.create(user=user, expiry=None, name=name)[1]


def api_for(user):
    """An API client that sends a token of this user."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


@functools.cache
def tls_material(name="test"):
    """A node's TLS fields (tls_ca, tls_cert, tls_key): a CA of its own and a client
    certificate it signed, made once per name."""
    from lab.certs import LabCA, node_tls

    with tempfile.TemporaryDirectory() as folder:
        ca = LabCA(Path(folder), name)
        ca.ensure({})
        return node_tls(ca.client_paths())
