"""The service spec: what a client may ask for, checked and normalised with every default."""

import copy
import re

from django.conf import settings
from rest_framework import serializers

from fleet.access import sealing
from fleet.engine.errors import registry_of
from fleet.ingress import routes
from fleet.models.validation import validate_dns_label
from fleet.services.fields import (
    HOUR,
    BooleanField,
    ConstraintField,
    EnvField,
    IntegerField,
    NumberField,
    SecretsField,
    StrictSerializer,
    StringField,
    _above_zero,
    command_field,
    defaults_of,
    duration,
)

SPEC_FIELDS = (
    "image",
    "command",
    "env",
    "secrets",
    "ports",
    "healthcheck",
    "constraints",
    "resources",
    "restart_policy",
    "update",
    "ingress",
)
# Nested objects a partial deploy changes key by key; every other field is replaced whole.
MERGED_OBJECTS = ("update", "resources")

_DOMAIN_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
# Docker reads the first part as a registry only if it has a dot or a port, or is localhost.
_REGISTRY = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})+(?::[0-9]+)?|{_DOMAIN_PART}:[0-9]+|localhost)"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE = re.compile(
    rf"^(?:{_REGISTRY}/)?{_PATH_PART}(?:/{_PATH_PART})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
# Current engines refuse memory limits under 6 MiB (older ones under 4 MiB).
MIN_MEMORY_BYTES = 6 * 1024 * 1024
PROTOCOLS = ("tcp", "udp")
RESTART_POLICIES = ("any", "on-failure", "none")
UPDATE_ORDERS = ("start-first", "stop-first")
FAILURE_ACTIONS = ("rollback", "pause")
# What a policy field added since (`auto`) means in a revision stored before it.
UPDATE_DEFAULTS = {"auto": False}
HEALTHCHECK_KINDS = ("CMD", "CMD-SHELL")
# A host name as HTTP clients send it: DNS labels joined by dots, lowercase once normalised.
HOSTNAME = re.compile(rf"^{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*$")
# A path prefix of plain URL characters: nothing HAProxy's CLI or map file reads (spaces, ';').
URL_PATH = re.compile(r"^/[A-Za-z0-9._~%/+-]*$")

MAX_DRAIN = HOUR  # seconds a replica may drain out of the ingress (converge/runner.py)


def validate_image(value):
    """An image reference: [registry[:port]/]path[:tag][@sha256:digest], path in lowercase."""
    if any(char.isspace() for char in value):
        raise serializers.ValidationError("An image reference may not contain spaces.")
    # Checked before the pattern so that a huge value never reaches it.
    if len(value) > 255:
        raise serializers.ValidationError("Ensure this field has no more than 255 characters.")
    if not IMAGE.fullmatch(value):
        raise serializers.ValidationError(
            "Use an image reference such as busybox, library/nginx:1.25 or "
            "registry.example:5000/team/app:1, with a lowercase path."
        )
    allowed = getattr(settings, "FLEET_ALLOWED_REGISTRIES", [])
    if allowed and registry_of(value) not in allowed:
        raise serializers.ValidationError(
            f"Images may come only from {', '.join(allowed)} (FLEET_ALLOWED_REGISTRIES); "
            f"this one is from {registry_of(value)}."
        )


class PortSerializer(StrictSerializer):
    """A container port, published on a fixed host port or, when null, on one Docker picks."""

    container = IntegerField(min_value=1, max_value=65535)
    published = IntegerField(min_value=1, max_value=65535, allow_null=True, default=None)
    protocol = serializers.ChoiceField(choices=PROTOCOLS, default="tcp")

    def validate_published(self, value):
        span = getattr(settings, "FLEET_PUBLISHED_PORTS", None)
        if value is not None and span and not span[0] <= value <= span[1]:
            raise serializers.ValidationError(
                f"Services may publish host ports {span[0]}-{span[1]} only "
                "(FLEET_PUBLISHED_PORTS); leave it out to have Docker pick one."
            )
        return value


class HealthcheckSerializer(StrictSerializer):
    """The command Docker runs in each replica to tell whether it is healthy."""

    command = command_field(allow_empty=False)
    # At least 1 ms, as the Engine API requires, which also rules out 0.
    interval = duration(5)
    timeout = duration(3)
    retries = IntegerField(min_value=1, max_value=100, default=3)
    start_period = duration(0, allow_zero=True)

    def validate_command(self, value):
        if value[0] not in HEALTHCHECK_KINDS:
            raise serializers.ValidationError(
                'Start the command with "CMD" (arguments) or "CMD-SHELL" (a shell command).'
            )
        if len(value) < 2:
            raise serializers.ValidationError(f"Give the command to run after {value[0]!r}.")
        return value


class ResourcesSerializer(StrictSerializer):
    """Limits for each replica; null means no limit."""

    cpus = NumberField(max_value=1024, allow_null=True, default=None, validators=[_above_zero])
    memory_bytes = IntegerField(min_value=MIN_MEMORY_BYTES, allow_null=True, default=None)


class UpdatePolicySerializer(StrictSerializer):
    """How a new revision replaces the running replicas."""

    parallelism = IntegerField(min_value=1, max_value=100, default=1)
    delay = NumberField(min_value=0, max_value=HOUR, default=0)
    order = serializers.ChoiceField(choices=UPDATE_ORDERS, default="start-first")
    monitor = NumberField(min_value=0, max_value=HOUR, default=5)
    failure_action = serializers.ChoiceField(choices=FAILURE_ACTIONS, default="rollback")
    # Deploy a newer digest of the image's tag as soon as an image check finds one.
    auto = BooleanField(default=False)
    # How long a replica's in-flight requests may take to finish once the ingress stops
    # sending it new ones, before it is stopped anyway.
    drain = NumberField(min_value=0, max_value=MAX_DRAIN, default=10)


class IngressSerializer(StrictSerializer):
    """Where the ingress sends requests for this service: a host and a path prefix, to the
    replicas' container port."""

    host = StringField(max_length=253)
    port = IntegerField(min_value=1, max_value=65535)
    path = StringField(max_length=1024, default="/")

    def validate_host(self, value):
        value = value.lower().rstrip(".")
        if not HOSTNAME.fullmatch(value):
            raise serializers.ValidationError(
                "Use a host name such as web.example.com: letters, digits, '-' and dots."
            )
        return value

    def validate_path(self, value):
        if not URL_PATH.fullmatch(value):
            raise serializers.ValidationError(
                "Use a path prefix that starts with '/', such as / or /api/, without spaces."
            )
        return value


class ServiceSpecSerializer(StrictSerializer):
    """A service as a client describes it, normalised with every default filled in."""

    name = StringField(validators=[validate_dns_label])
    image = StringField(validators=[validate_image])
    command = command_field(default=list)
    env = EnvField(default=dict)
    secrets = SecretsField(default=dict)
    ports = PortSerializer(many=True, max_length=32, default=list)
    replicas = IntegerField(min_value=0, default=1)
    healthcheck = HealthcheckSerializer(allow_null=True, default=None)
    constraints = serializers.ListField(child=ConstraintField(), max_length=32, default=list)
    resources = ResourcesSerializer(default=defaults_of(ResourcesSerializer))
    restart_policy = serializers.ChoiceField(choices=RESTART_POLICIES, default="any")
    update = UpdatePolicySerializer(default=defaults_of(UpdatePolicySerializer))
    ingress = IngressSerializer(allow_null=True, default=None)

    def validate_replicas(self, value):
        # Read when validating, not at import, so that a changed setting applies at once.
        most = getattr(settings, "FLEET_MAX_REPLICAS", 100)
        if value > most:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {most} (FLEET_MAX_REPLICAS)."
            )
        return value

    def validate(self, attrs):
        if both := sorted(set(attrs.get("env", {})) & set(attrs.get("secrets", {}))):
            raise serializers.ValidationError(
                {"secrets": [f"{', '.join(both)} is also in env; name each variable once."]}
            )
        self._check_ingress(attrs)
        return attrs

    def _check_ingress(self, attrs):
        ingress = attrs.get("ingress")
        if ingress and (other := routes.taken_by(ingress, attrs.get("name"))):
            raise serializers.ValidationError(
                {
                    "ingress": [
                        f"Service {other} already takes host {ingress['host']} with path "
                        f"{ingress['path']}; give this one another host or path."
                    ]
                }
            )
        published = {(p["container"], p["protocol"]) for p in attrs.get("ports", [])}
        if ingress and (ingress["port"], "tcp") not in published:
            raise serializers.ValidationError(
                {
                    "ingress": {
                        "port": [
                            f"Publish container port {ingress['port']}/tcp in ports (published "
                            "may be left out) so that the ingress can reach the replicas."
                        ]
                    }
                }
            )

    def validate_ports(self, ports):
        # Keyed by index, as DRF reports the errors of list items.
        errors = {}
        for index, port in enumerate(ports):
            if clashes := _port_clashes(port, ports[:index]):
                errors[index] = clashes
        if errors:
            raise serializers.ValidationError(errors)
        return ports


def _port_clashes(port, earlier):
    """Errors for a port that repeats an earlier one's container or published port."""
    errors = {}
    protocol = port["protocol"]
    if any((p["container"], p["protocol"]) == (port["container"], protocol) for p in earlier):
        errors["container"] = [f"Container port {port['container']}/{protocol} is listed twice."]
    published = port["published"]
    if published is not None and any(
        (p["published"], p["protocol"]) == (published, protocol) for p in earlier
    ):
        errors["published"] = [f"Port {published}/{protocol} is published twice."]
    return errors


def default_spec() -> dict:
    """What each absent field of a spec means (all of SPEC_FIELDS but image)."""
    fields = ServiceSpecSerializer().fields
    return {name: fields[name].get_default() for name in SPEC_FIELDS if name != "image"}


def merge(current: dict, changes: dict) -> dict:
    """A full spec from the current one and a client's partial changes, still to be validated.

    Secrets change name by name, since nobody can send back the values they cannot see:
    {"secrets": {"TOKEN": "new"}} replaces one, {"secrets": {"OLD": null}} removes one.
    """
    merged = copy.deepcopy({**current, **changes})
    for key in MERGED_OBJECTS:
        if isinstance(current.get(key), dict) and isinstance(changes.get(key), dict):
            merged[key] = copy.deepcopy({**current[key], **changes[key]})
    if isinstance(changes.get("secrets"), dict):
        both = {**current.get("secrets", {}), **changes["secrets"]}
        merged["secrets"] = {name: value for name, value in both.items() if value is not None}
    return merged


def comparable(spec: dict) -> dict:
    """The spec with its secrets opened, to tell whether two revisions really differ.

    Secrets this key cannot open compare as None: different from any readable spec.
    """
    try:
        secrets = sealing.open_all(spec.get("secrets") or {})
    except sealing.SealError:
        secrets = None
    found = {**spec, "secrets": secrets}
    if isinstance(spec.get("update"), dict):
        found["update"] = {**UPDATE_DEFAULTS, **spec["update"]}
    return found


def shown(spec: dict) -> dict:
    """The spec as anyone may see it: secret values masked."""
    return {**spec, "secrets": sealing.masked(spec.get("secrets") or {})}
