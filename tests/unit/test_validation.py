"""Endpoint, name and label validation: pure functions, no database."""

import pytest
from django.core.exceptions import ValidationError

from fleet.models.validation import (
    validate_dns_label,
    validate_endpoint,
    validate_labels,
    validate_pem,
)

GOOD_ENDPOINTS = [
    "unix:///var/run/docker.sock",
    "tcp://10.250.7.11:2375",
    "tcp://docker-1.example.internal:2376",
    "tcp://[::1]:2375",
    "ssh://deploy@build-host",
    "ssh://deploy@build-host:2222",
    "ssh://10.0.0.5",
]

BAD_ENDPOINTS = [
    "",
    "docker.sock",
    "http://10.0.0.1:2375",
    "unix://relative/path",
    "unix://",
    "tcp://10.0.0.1",
    "tcp://:2375",
    "tcp://10.0.0.1:99999",
    "tcp://10.0.0.1:port",
    "tcp://user@10.0.0.1:2375",
    "tcp://10.0.0.1:2375/path",
    "tcp://10.0.0.1:2375?x=1",
    "tcp://bad_host!:2375",
    "ssh://",
    "ssh://host:0",
]


@pytest.mark.parametrize("endpoint", GOOD_ENDPOINTS)
def test_it_accepts_well_formed_endpoints(endpoint):
    validate_endpoint(endpoint)


@pytest.mark.parametrize("endpoint", BAD_ENDPOINTS)
def test_it_refuses_malformed_endpoints_with_a_message(endpoint):
    with pytest.raises(ValidationError) as info:
        validate_endpoint(endpoint)
    assert info.value.messages[0]


@pytest.mark.parametrize("name", ["a", "lab-1", "node42", "x" * 63])
def test_it_accepts_dns_labels(name):
    validate_dns_label(name)


@pytest.mark.parametrize("name", ["", "Lab-1", "-lab", "lab-", "lab_1", "lab.1", "x" * 64, "ü"])
def test_it_refuses_names_that_are_not_dns_labels(name):
    with pytest.raises(ValidationError):
        validate_dns_label(name)


def test_it_accepts_flat_string_labels():
    validate_labels({"zone": "a", "disk": "ssd", "example.com/tier": "web"})


@pytest.mark.parametrize(
    "labels", [["zone=a"], {"zone": 1}, {"": "a"}, {"zone": {"nested": "x"}}, {"bad key": "a"}]
)
def test_it_refuses_labels_that_are_not_a_flat_string_map(labels):
    with pytest.raises(ValidationError):
        validate_labels(labels)


def test_it_refuses_tls_material_that_is_not_pem():
    validate_pem("-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValidationError):
        validate_pem("not a certificate")
