"""What people do with API tokens: make one (shown once), list and revoke them.

Only a token's hash is stored (django-rest-knox), so no one can read a token back; an
admin may revoke anyone's. Making and revoking are events, like every change of access.
"""

from datetime import timedelta

from django.db import transaction

from fleet import live
from fleet.models import SYSTEM, ApiToken, Event, EventKind

REVOKE_ANY = "fleet.delete_apitoken"
LIST_ANY = "fleet.view_apitoken"


def _about(token):
    return f"token {token.name!r} of {token.user.get_username()}"


@transaction.atomic
def issue(user, name, lifetime_seconds=None, actor=SYSTEM):
    """Make a token for the user; return the row and the token itself, which exists nowhere
    else from now on."""
    lifetime = timedelta(seconds=lifetime_seconds) if lifetime_seconds else None
    token, secret = ApiToken.objects.create(user=user, expiry=lifetime, name=name)
    expiry = f", expires {token.expiry:%Y-%m-%d %H:%M} UTC" if token.expiry else ""
    Event.objects.record(EventKind.USER_TOKEN_CREATED, actor=actor, reason=_about(token) + expiry)
    return token, secret


def visible_to(user):
    """The tokens a user may see listed: their own, or everyone's for an admin."""
    tokens = ApiToken.objects.select_related("user")
    return tokens if user.has_perm(LIST_ANY) else tokens.filter(user=user)


def may_revoke(user, token):
    return token.user_id == user.pk or user.has_perm(REVOKE_ANY)


@transaction.atomic
def revoke(token, actor=SYSTEM):
    """End a token at once: requests and sockets that use it are refused from now on."""
    Event.objects.record(EventKind.USER_TOKEN_REVOKED, actor=actor, reason=_about(token))
    token.delete()
    live.login_changed(token.user_id)
