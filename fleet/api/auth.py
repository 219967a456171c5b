"""API tokens: made with a user name and password (locked out like the login pages after
repeated failures), shown once, then listed and revoked by their owner (or an admin)."""

from axes.helpers import get_cool_off, get_lockout_message
from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import PermissionDenied, Throttled, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from fleet.access import tokens
from fleet.models import Actor, ApiToken

YEAR = 365 * 24 * 3600


class TokenRequestSerializer(AuthTokenSerializer):
    """A user name no longer than a user name can be, checked before anyone authenticates
    it (and before the lockout records it, in a column of its own size); the new token's
    name and, optionally, how long it lasts."""

    username = serializers.CharField(
        label="Username",
        write_only=True,
        max_length=get_user_model()._meta.get_field(get_user_model().USERNAME_FIELD).max_length,
    )
    name = serializers.CharField(max_length=64, default="api", help_text="What it is for.")
    expires_in = serializers.IntegerField(
        min_value=60,
        max_value=10 * YEAR,
        required=False,
        allow_null=True,
        default=None,
        help_text="Seconds until it stops working; none: until revoked.",
    )


class TokenSerializer(serializers.ModelSerializer):
    """A token as its owner (or an admin) sees it listed: never the token itself."""

    id = serializers.UUIDField(read_only=True)
    user = serializers.CharField(source="user.get_username", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "user", "created", "expiry"]


class NewTokenSerializer(TokenSerializer):
    """A token just made: the only time `token` is shown."""

    token = serializers.CharField(read_only=True)

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]


class ObtainToken(generics.GenericAPIView):
    """POST a user name and password (and a name for the token), get a new token.

    django-axes refuses a locked-out user name and address in the authentication
    backend and marks the request; its middleware never sees DRF's own request object,
    so the lockout is turned into a 429 here.
    """

    serializer_class = TokenRequestSerializer
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: NewTokenSerializer})
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except ValidationError:
            if getattr(request, "axes_locked_out", False):
                cool_off = get_cool_off(request)
                wait = cool_off.total_seconds() if cool_off else None
                raise Throttled(wait=wait, detail=str(get_lockout_message())) from None
            raise
        user = serializer.validated_data["user"]
        request.user = user  # the actor of the event: who asked, by password
        token, secret = tokens.issue(
            user,
            serializer.validated_data["name"],
            serializer.validated_data["expires_in"],
            Actor.of_request(request, "api"),
        )
        token.token = secret
        return Response(NewTokenSerializer(token).data, status=status.HTTP_200_OK)


class TokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The caller's API tokens (an admin sees everyone's), and revoking one."""

    serializer_class = TokenSerializer
    permission_classes = [IsAuthenticated]
    lookup_url_kwarg = "id"
    lookup_value_regex = "[0-9a-f-]{36}"
    queryset = ApiToken.objects.none()  # for the schema; the real one depends on the caller

    def get_queryset(self):
        return tokens.visible_to(self.request.user)

    def perform_destroy(self, instance):
        if not tokens.may_revoke(self.request.user, instance):
            raise PermissionDenied("Only the token's owner or an admin may revoke it.")
        tokens.revoke(instance, Actor.of_request(self.request, "api"))
