"""Every page carries a strict Content-Security-Policy, and the pages keep to it."""

import re

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
}
INLINE = [
    re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),  # a script without src
    re.compile(r"<style\b", re.I),
    re.compile(r"""\sstyle\s*=\s*["']""", re.I),
    re.compile(r"""\son[a-z]+\s*=\s*["']""", re.I),  # onclick="..." and its kin
    re.compile(r"javascript:", re.I),
]


def policy(response):
    header = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


def inline_code(html):
    return [m.group(0) for pattern in INLINE for m in pattern.finditer(html)]


@pytest.fixture
def service(db):
    from fleet import services
    from fleet.models import Node
    from fleet.services.spec import ServiceSpecSerializer

    Node.objects.create(name="n1", endpoint="tcp://192.0.2.1:2375")
    spec = ServiceSpecSerializer(data={"name": "web", "image": "busybox:1"})
    spec.is_valid(raise_exception=True)
    return services.create(spec.validated_data)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/nodes/n1/",
        "/services/web/",
        "/admin/",
        "/admin/fleet/node/add/",
        "/admin/fleet/service/add/",
        "/admin/fleet/service/{pk}/change/",
        "/api/docs/",
    ],
)
def test_every_page_has_the_strict_policy_and_no_inline_code(admin_client, service, path):
    response = admin_client.get(path.format(pk=service.pk))
    assert response.status_code == 200
    assert policy(response) == STRICT
    assert inline_code(response.content.decode()) == []


def test_the_login_page_and_a_lockout_have_the_policy_too(client, admin_user):
    response = client.get("/login/")
    assert policy(response) == STRICT
    assert inline_code(response.content.decode()) == []
    for _ in range(settings.FLEET_LOGIN_FAILURE_LIMIT):
        response = client.post("/login/", {"username": "root", "password": "wrong"})
    assert response.status_code == 429
    assert policy(response) == STRICT


def test_the_api_docs_load_their_start_up_script_from_a_file(admin_client):
    page = admin_client.get("/api/docs/").content.decode()
    assert '<script src="/api/docs/?script="></script>' in page
    script = admin_client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
