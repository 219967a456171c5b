"""Which registry an image is pulled from, and which servers credentials may be kept for."""

import pytest
from django.core.exceptions import ValidationError

from fleet.engine.errors import registry_of
from fleet.services.registries import clean_server


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("redis", "docker.io"),
        ("redis:7", "docker.io"),
        ("library/redis", "docker.io"),
        ("docker.io/library/redis:7", "docker.io"),
        ("index.docker.io/library/redis", "docker.io"),
        ("registry-1.docker.io/team/app:1", "docker.io"),
        ("team/app@sha256:" + "a" * 64, "docker.io"),
        ("host:5000/a/b@sha256:" + "b" * 64, "host:5000"),
        ("Host.Example.COM/a/b:2", "host.example.com"),
        ("localhost/app", "localhost"),
        ("localhost:5000/app", "localhost:5000"),
        ("10.0.0.5:5443/fleet/private:1", "10.0.0.5:5443"),
        ("ghcr.io/org/app:latest", "ghcr.io"),
    ],
)
def test_an_image_reference_of_every_shape_names_its_registry(image, registry):
    assert registry_of(image) == registry


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("ghcr.io", "ghcr.io"),
        (" Registry.Example.com:5000 ", "registry.example.com:5000"),
        ("docker.io", "docker.io"),
        ("index.docker.io", "docker.io"),  # one login for Docker Hub, whatever its name
        ("localhost:5000", "localhost:5000"),
        ("10.0.0.5:5443", "10.0.0.5:5443"),
    ],
)
def test_a_server_is_kept_as_image_references_name_it(given, kept):
    assert clean_server(given) == kept


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("https://ghcr.io", "is a URL"),
        ("ghcr.io/org", "is a URL"),
        ("myteam", "Docker Hub account"),
        ("host:0", "ports are 1 to 65535"),
        ("host:99999", "ports are 1 to 65535"),
        ("bad host", "not a registry server"),
        ("-x.io", "not a registry server"),
        ("", "Give the registry"),
        (None, "Give the registry"),
        (5000, "Give the registry"),
    ],
)
def test_a_server_that_is_not_one_is_refused_with_what_to_give(given, says):
    with pytest.raises(ValidationError) as refused:
        clean_server(given)
    assert says in " ".join(refused.value.messages)
