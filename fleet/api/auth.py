"""The API's token endpoint, locked out like the login pages after repeated failures."""

from axes.helpers import get_cool_off, get_lockout_message
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled, ValidationError


class ObtainToken(ObtainAuthToken):
    """POST a user name and password, get the user's token.

    django-axes refuses a locked-out user name and address in the authentication
    backend and marks the request; its middleware never sees DRF's own request object,
    so the lockout is turned into a 429 here.
    """

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            if getattr(request, "axes_locked_out", False):
                cool_off = get_cool_off(request)
                wait = cool_off.total_seconds() if cool_off else None
                raise Throttled(wait=wait, detail=str(get_lockout_message())) from None
            raise
