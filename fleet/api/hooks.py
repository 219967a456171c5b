"""POST /hooks/deploy/<secret>: the one door without a login; the secret is the credential.

CSRF does not apply (no cookie is read: DRF's views are exempt and this one authenticates
nobody). Only POST, only JSON (or no body at all), at most FLEET_WEBHOOK_MAX_BODY bytes.
A secret that is not a webhook's is a 404 that says nothing about any service. No answer
is logged by Django's request logger, whose lines carry the path, and so the secret.
"""

import json

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import (
    NotFound,
    ParseError,
    Throttled,
    UnsupportedMediaType,
    ValidationError,
)
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from fleet import services
from fleet.access.addresses import client_address
from fleet.models import Webhook
from fleet.services import webhooks


class HookAnswerSerializer(serializers.Serializer):
    """The deployment a call started (or the current one, when nothing changed)."""

    deployment = serializers.IntegerField(help_text="The deployment's id.")
    revision = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.CharField(help_text="The deployment in the API, to follow its rollout.")


class TooLarge(ParseError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The body is too large."


def body_of(request):
    """The call's JSON object; {} for no body at all."""
    limit = settings.FLEET_WEBHOOK_MAX_BODY
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ParseError("Bad Content-Length.") from None
    if declared > limit:
        raise TooLarge(f"The body may have at most {limit} bytes.")
    raw = request.body
    if len(raw) > limit:
        raise TooLarge(f"The body may have at most {limit} bytes.")
    if not raw.strip():
        return {}
    if request.content_type != "application/json":
        raise UnsupportedMediaType(request.content_type or "none", "Send application/json.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ParseError("The body is not valid JSON.") from None


class DeployHook(APIView):
    """Deploy a service through one of its webhooks: `{"image": ...}`, `{"tag": ...}`,
    `{"env": {...}}` or no body (redeploy the spec as it is: no new revision)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # Django's own flag for "already logged": its request logger would write the path.
        response._has_been_logged = True
        return response

    @extend_schema(
        request=webhooks.CallSerializer,
        auth=[],
        responses={
            202: HookAnswerSerializer,
            200: HookAnswerSerializer,
            400: OpenApiResponse(description="Bad body: field errors; nothing changed."),
            404: OpenApiResponse(description="No webhook has this secret."),
            409: OpenApiResponse(description="The service cannot be deployed now."),
            413: OpenApiResponse(description="Body larger than FLEET_WEBHOOK_MAX_BODY."),
            415: OpenApiResponse(description="A body that is not application/json."),
            429: OpenApiResponse(description="Over FLEET_WEBHOOK_RATE; see Retry-After."),
        },
    )
    def post(self, request, secret):
        webhook = webhooks.find(secret)
        if webhook is None:
            raise NotFound()
        body = body_of(request)
        try:
            changes = webhooks.changes_for(webhook.service, body)
        except serializers.ValidationError as exc:
            raise ValidationError(exc.detail) from None
        try:
            deployment, created = webhooks.call(webhook, changes, client_address(request))
        except webhooks.RateLimited as exc:
            raise Throttled(wait=exc.retry_after) from None
        except Webhook.DoesNotExist:
            raise NotFound() from None
        except services.ServiceError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        answer = {
            "deployment": deployment.pk,
            "revision": deployment.revision,
            "status": deployment.status,
            "url": request.build_absolute_uri(reverse("deployment-detail", args=[deployment.pk])),
        }
        return Response(answer, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)
