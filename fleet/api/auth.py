"""The API's token endpoint, locked out like the login pages after repeated failures."""

from axes.helpers import get_cool_off, get_lockout_message
from django.contrib.auth import get_user_model
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled, ValidationError


class TokenRequestSerializer(AuthTokenSerializer):
    """A user name no longer than a user name can be, checked before anyone authenticates
    it (and before the lockout records it, in a column of its own size)."""

    username = serializers.CharField(
        label="Username",
        write_only=True,
        max_length=get_user_model()._meta.get_field(get_user_model().USERNAME_FIELD).max_length,
    )


class ObtainToken(ObtainAuthToken):
    """POST a user name and password, get the user's token.

    django-axes refuses a locked-out user name and address in the authentication
    backend and marks the request; its middleware never sees DRF's own request object,
    so the lockout is turned into a 429 here.
    """

    serializer_class = TokenRequestSerializer

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            if getattr(request, "axes_locked_out", False):
                cool_off = get_cool_off(request)
                wait = cool_off.total_seconds() if cool_off else None
                raise Throttled(wait=wait, detail=str(get_lockout_message())) from None
            raise
