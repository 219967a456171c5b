"""Websocket authentication: `Authorization: Token <token>` for programs, as in the REST API,
and the check an open socket repeats to learn that its login has ended."""

from importlib import import_module

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import AnonymousUser
from django.utils.crypto import constant_time_compare
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from fleet.access.roles import READ_FLEET

SIGNED_OUT, NO_ROLE = 4401, 4403  # the close codes a browser does not retry


def user_for_token(key):
    """The active user an API token (not expired, not revoked) belongs to, or None: checked
    as the REST API checks it."""
    try:
        user, _ = TokenAuthentication().authenticate_credentials(key.encode())
    except (AuthenticationFailed, UnicodeError):
        return None
    return user


def _session_holds(session_key, user):
    """Whether the session is still the user's login: not logged out, flushed or expired,
    and made before the user's password last changed."""
    if not session_key:
        return False
    data = import_module(settings.SESSION_ENGINE).SessionStore(session_key).load()
    return data.get(SESSION_KEY) == str(user.pk) and constant_time_compare(
        data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()
    )


def login_ended(scope, user_pk):
    """Why a socket's login no longer holds, as the close code, or None while it does."""
    user = get_user_model().objects.filter(pk=user_pk, is_active=True).first()
    if user is None:
        return NO_ROLE
    token = scope.get("fleet_token")
    if token is not None:
        owner = user_for_token(token)
        if owner is None or owner.pk != user.pk:
            return SIGNED_OUT  # the token was revoked (or expired)
    elif not _session_holds(getattr(scope.get("session"), "session_key", None), user):
        return SIGNED_OUT
    return None if user.has_perms(READ_FLEET) else NO_ROLE


class TokenAuthMiddleware:
    """Sets scope["user"] from a token header when the session did not already log someone in,
    and keeps the token (scope["fleet_token"]) for the socket's later checks."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            headers = dict(scope.get("headers") or [])
            value = headers.get(b"authorization", b"").decode("latin-1")
            if value.startswith("Token "):
                key = value[6:].strip()
                found = await database_sync_to_async(user_for_token)(key)
                scope = {**scope, "user": found or AnonymousUser(), "fleet_token": key}
        return await self.inner(scope, receive, send)
