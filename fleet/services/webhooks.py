"""Deploy webhooks: what people do with them (make, rotate, revoke) and what a call does.

A webhook is a secret URL that deploys one service without a login: the secret is the
credential. Only its SHA-256 is stored (like API tokens), so it is shown once, when it is
made or rotated, and never again. A call goes through services.deploy_changes, the same
function as the API's deploy, so the same validation, guard rails and conflicts apply.
Making, rotating and revoking are Events; a deploy's Event names the webhook as actor.
"""

import hashlib
import hmac
import math
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from rest_framework import serializers

from fleet import services
from fleet.models import SYSTEM, Actor, Event, EventKind, Webhook
from fleet.services.fields import EnvField, StrictSerializer, StringField
from fleet.services.spec import ServiceSpecSerializer, merge

# What a secret may look like: secrets.token_urlsafe(32) makes 43 of these characters.
SECRET = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
# Docker's rule for a tag.
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class RateLimited(Exception):
    """The webhook has used its calls for this window; `retry_after` is in whole seconds."""

    def __init__(self, retry_after):
        super().__init__(f"Too many calls; try again in {retry_after} s.")
        self.retry_after = retry_after


def new_secret():
    return secrets.token_urlsafe(32)


def digest_of(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def find(secret):
    """The webhook whose secret this is, or None.

    The row is looked up by the secret's hash, so the database's comparison times only a
    hash (which tells an attacker nothing about any secret); the match is then confirmed
    in constant time, so no answer depends on how much of a guess was right.
    """
    if not isinstance(secret, str) or not SECRET.fullmatch(secret):
        return None
    digest = digest_of(secret)
    webhook = Webhook.objects.select_related("service").filter(digest=digest).first()
    if webhook is None or not hmac.compare_digest(webhook.digest, digest):
        return None
    return webhook


def _about(webhook):
    return f"webhook {webhook.name!r}"


@transaction.atomic
def create(service, name, actor=SYSTEM):
    """Make a webhook for the service; return the row and its secret, kept nowhere else."""
    secret = new_secret()
    webhook = Webhook.objects.create(
        service=service, name=name, digest=digest_of(secret), created_by=actor.name
    )
    Event.objects.record(
        EventKind.WEBHOOK_CREATED, actor=actor, service=service, reason=_about(webhook)
    )
    return webhook, secret


@transaction.atomic
def rotate(webhook, actor=SYSTEM):
    """Give the webhook a new secret; the old one stops working at once. Return the new one."""
    secret = new_secret()
    webhook.digest = digest_of(secret)
    webhook.rotated_at = timezone.now()
    webhook.save(update_fields=["digest", "rotated_at"])
    Event.objects.record(
        EventKind.WEBHOOK_ROTATED, actor=actor, service=webhook.service, reason=_about(webhook)
    )
    return secret


@transaction.atomic
def revoke(webhook, actor=SYSTEM):
    """Delete the webhook: its URL answers 404 from now on."""
    Event.objects.record(
        EventKind.WEBHOOK_REVOKED, actor=actor, service=webhook.service, reason=_about(webhook)
    )
    webhook.delete()


def with_tag(image, tag):
    """The image reference with its tag (and any digest) replaced by `tag`."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:  # a colon before the last slash is a registry's port, not a tag
        name = name[:colon]
    return f"{name}:{tag}"


def validate_tag(value):
    if not TAG.fullmatch(value):
        raise serializers.ValidationError(
            "Use a tag such as v2 or 1.4.0: letters, digits, '_', '.', '-', at most 128, "
            "not starting with '.' or '-'."
        )


class CallSerializer(StrictSerializer):
    """What a webhook call may send: a new image, or only a new tag; and the environment."""

    image = StringField(required=False, max_length=255)
    tag = StringField(required=False, max_length=128, validators=[validate_tag])
    env = EnvField(required=False)

    def validate(self, attrs):
        if "image" in attrs and "tag" in attrs:
            raise serializers.ValidationError({"tag": ["Send image or tag, not both."]})
        return attrs


def changes_for(service, body):
    """The spec changes a call asks for, checked against the service's whole spec as the
    API's deploy checks them; a ValidationError with field errors otherwise."""
    if not isinstance(body, dict):
        raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
    call = CallSerializer(data=body)
    call.is_valid(raise_exception=True)
    changes = dict(call.validated_data)
    if "tag" in changes:
        changes["image"] = with_tag(service.spec["image"], changes.pop("tag"))
    merged = merge(service.spec, changes) | {"name": service.name, "replicas": service.replicas}
    ServiceSpecSerializer(data=merged).is_valid(raise_exception=True)
    return changes


def claim(webhook, now=None):
    """Take one call from the webhook's budget, or raise RateLimited.

    One conditional UPDATE on the row (a fixed window): it starts a new window when the
    last one is over, else counts the call while the count is under the limit. The
    database makes it atomic across every web process, with nothing else to run, and a
    call refused later (409) gives its claim back with the transaction.
    """
    now = now or timezone.now()
    window = timedelta(seconds=settings.FLEET_WEBHOOK_RATE_WINDOW)
    over = Q(window_started_at__isnull=True) | Q(window_started_at__lte=now - window)
    claimed = (
        Webhook.objects.filter(pk=webhook.pk)
        .filter(over | Q(window_calls__lt=settings.FLEET_WEBHOOK_RATE))
        .update(
            window_calls=Case(When(over, then=Value(1)), default=F("window_calls") + 1),
            window_started_at=Case(When(over, then=Value(now)), default=F("window_started_at")),
        )
    )
    if claimed:
        return
    started = Webhook.objects.filter(pk=webhook.pk).values_list("window_started_at", flat=True)
    if not started:
        raise Webhook.DoesNotExist  # revoked meanwhile
    left = (started[0] + window - now).total_seconds()
    raise RateLimited(max(1, math.ceil(left)))


@transaction.atomic
def call(webhook, changes, address=""):
    """Deploy the webhook's service with the call's changes; return (deployment, whether new).

    Raises RateLimited, or services.ServiceError as the API's deploy does (nothing changes
    then: the claim is rolled back with the rest).
    """
    # The webhook's row first, then the service's (deploy locks it): the order in which a
    # service's final deletion takes them (Django deletes its webhooks first), so the two
    # never wait on each other.
    claim(webhook)
    actor = Actor(name=webhook.actor_name, via="webhook", address=address)
    deployment, created = services.deploy_changes(webhook.service, changes, actor)
    Webhook.objects.filter(pk=webhook.pk).update(last_used_at=timezone.now())
    return deployment, created
