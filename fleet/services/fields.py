"""The field types of the service spec and the strict serializers built from them: JSON
values kept as given (no number read as text, no spaces trimmed), and unknown keys refused."""

import math
import re

from rest_framework import serializers

from fleet.access import sealing
from fleet.converge.scheduling import parse_constraint

HOUR = 3600
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_ENV = 200


def _above_zero(value):
    if value <= 0:
        raise serializers.ValidationError("Ensure this value is greater than 0.")


def _zero_or_a_millisecond(value):
    # The Engine API takes 0 or at least 1 ms; anything in between would be accepted here
    # and refused only when a container is created.
    if 0 < value < 0.001:
        raise serializers.ValidationError("Ensure this value is 0 or at least 0.001 (1 ms).")


class StringField(serializers.CharField):
    """A JSON string kept as given: numbers are not turned into text, spaces are not trimmed."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class IntegerField(serializers.IntegerField):
    """A JSON integer: true, false and strings such as "3" are refused."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class NumberField(serializers.FloatField):
    """A JSON number kept as given, so that 5 stays 5 and 0.5 stays 0.5."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not math.isfinite(data):
            self.fail("invalid")
        return data


class BooleanField(serializers.BooleanField):
    """A JSON true or false: "true", 1 and the other spellings DRF accepts are refused."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class ConstraintField(StringField):
    """A placement constraint, stored in its canonical form ("zone != a" becomes "zone!=a")."""

    def to_internal_value(self, data):
        try:
            return str(parse_constraint(super().to_internal_value(data)))
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class EnvField(serializers.DictField):
    """Environment variables: named like shell variables, with string values."""

    child = StringField(allow_blank=True, max_length=32768)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            return super().to_internal_value(data)
        if len(data) > MAX_ENV:
            raise serializers.ValidationError(f"Ensure there are at most {MAX_ENV} variables.")
        errors = {
            str(name): ["Use letters, digits and '_', not starting with a digit."]
            for name in data
            if not ENV_NAME.fullmatch(str(name))
        }
        try:
            env = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({**errors, **exc.detail}) from exc
        if errors:
            raise serializers.ValidationError(errors)
        return env


class SecretsField(EnvField):
    """Environment variables whose values are secret: sealed as soon as they are validated.

    A value already sealed with this key (the stored one, carried over by a partial
    deploy) is kept as it is, so an unchanged secret makes no new revision.
    """

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            return super().to_internal_value(data)
        kept = {name: value for name, value in data.items() if sealing.is_sealed(value)}
        # Sealed, but not with this key (the key changed since): never passed on as a value.
        lost = [
            name
            for name, value in data.items()
            if name not in kept and isinstance(value, str) and value.startswith(sealing.PREFIX)
        ]
        if lost:
            raise serializers.ValidationError(
                {
                    name: [
                        "Stored with a key Fleet no longer has (FLEET_SECRETS_KEY or "
                        "SECRET_KEY changed); send its value again."
                    ]
                    for name in lost
                }
            )
        fresh = super().to_internal_value({k: v for k, v in data.items() if k not in kept})
        return kept | {name: sealing.seal(value) for name, value in fresh.items()}

    def to_representation(self, value):
        return sealing.masked(value)


def duration(default, *, allow_zero=False):
    """A number of seconds, at most an hour."""
    if allow_zero:
        return NumberField(
            min_value=0, max_value=HOUR, default=default, validators=[_zero_or_a_millisecond]
        )
    return NumberField(
        min_value=0.001,
        max_value=HOUR,
        default=default,
        error_messages={"min_value": "Ensure this value is at least 0.001 (1 ms)."},
    )


def command_field(**kwargs):
    """A command as an argument list, the way Docker takes it without a shell."""
    child = StringField(allow_blank=True, max_length=4096)
    return serializers.ListField(child=child, max_length=64, **kwargs)


def defaults_of(serializer_class):
    """The default of a nested object: the object with every field at its default."""
    return lambda: serializer_class().run_validation({})


class StrictMixin:
    """Refuse keys a serializer does not know or only shows, so that a typo (or a field the
    client may not set) never passes silently."""

    def to_internal_value(self, data):
        refused = {}
        if isinstance(data, dict):
            for key in data:
                field = self.fields.get(key)
                if field is None:
                    refused[str(key)] = ["Unknown field."]
                elif field.read_only:
                    refused[str(key)] = ["This field is read-only."]
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if refused and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**refused, **exc.detail}) from exc
            raise
        if refused:
            raise serializers.ValidationError(refused)
        return value


class StrictSerializer(StrictMixin, serializers.Serializer):
    """A serializer that refuses unknown keys."""
