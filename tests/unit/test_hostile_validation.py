"""Validators refuse what only a hostile or broken client sends: a trailing newline, NUL."""

import pytest
from django.core.exceptions import ValidationError
from rest_framework import serializers

from fleet.models.validation import validate_dns_label, validate_endpoint, validate_labels
from fleet.services.spec import ServiceSpecSerializer, validate_image


@pytest.mark.parametrize("name", ["web\n", "web\x00", "\nweb"])
def test_a_name_with_a_newline_or_nul_is_refused(name):
    with pytest.raises(ValidationError):
        validate_dns_label(name)


@pytest.mark.parametrize("endpoint", ["ssh://host\n", "tcp://ho\tst:2375", "unix:///run/d\x00"])
def test_an_endpoint_with_whitespace_or_control_characters_is_refused(endpoint):
    with pytest.raises(ValidationError):
        validate_endpoint(endpoint)


@pytest.mark.parametrize(
    "labels", [{"zone\n": "a"}, {"zone": "a\x00b"}, {"zone": "\x00"}, {"zo\x00ne": "a"}]
)
def test_labels_with_a_newline_in_the_key_or_nul_anywhere_are_refused(labels):
    with pytest.raises(ValidationError):
        validate_labels(labels)


def test_an_image_reference_with_a_trailing_newline_is_refused():
    with pytest.raises(serializers.ValidationError):
        validate_image("busybox:1\n")


def test_an_env_name_with_a_trailing_newline_is_refused():
    spec = ServiceSpecSerializer(data={"name": "web", "image": "busybox", "env": {"A\n": "1"}})
    assert not spec.is_valid()
    assert "env" in spec.errors
