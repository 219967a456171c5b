"""What a webhook call may ask for: a tag swapped into the service's image, or an image."""

import pytest

from fleet.services.webhooks import SECRET, CallSerializer, new_secret, with_tag


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("busybox", "busybox:v2"),
        ("busybox:1", "busybox:v2"),
        ("10.250.8.1:5000/fleet/demo:1", "10.250.8.1:5000/fleet/demo:v2"),
        ("10.250.8.1:5000/fleet/demo", "10.250.8.1:5000/fleet/demo:v2"),
        ("localhost:5000/app@sha256:" + "a" * 64, "localhost:5000/app:v2"),
        ("ghcr.io/team/app:1@sha256:" + "b" * 64, "ghcr.io/team/app:v2"),
    ],
)
def test_a_tag_replaces_the_tag_and_digest_but_never_a_registry_port(image, expected):
    assert with_tag(image, "v2") == expected


@pytest.mark.parametrize("tag", ["v2", "1.4.0", "_x", "a" * 128])
def test_docker_tags_are_accepted(tag):
    assert CallSerializer(data={"tag": tag}).is_valid()


@pytest.mark.parametrize("tag", ["", "-v2", ".v2", "v 2", "v2/x", "a" * 129, "v2\x00", 2])
def test_anything_else_as_a_tag_is_a_field_error(tag):
    call = CallSerializer(data={"tag": tag})
    assert not call.is_valid()
    assert "tag" in call.errors


def test_unknown_fields_and_image_with_tag_are_refused():
    call = CallSerializer(data={"image": "busybox:1", "tag": "v2", "command": ["sh"]})
    assert not call.is_valid()
    assert "command" in call.errors


def test_new_secrets_are_long_url_safe_and_never_repeat():
    made = {new_secret() for _ in range(100)}
    assert len(made) == 100
    assert all(SECRET.fullmatch(secret) and len(secret) >= 43 for secret in made)
