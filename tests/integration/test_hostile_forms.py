"""Hostile values posted to every form: the admin's node and service forms, the node page's
availability form. (The dashboard's new-service form posts to the API, which
test_hostile_api.py covers.)

Each field gets either a good value or a hostile one: huge text, NUL bytes, odd
unicode, negative and huge numbers, malformed JSON, repeated values. A form must
answer below 500, and when it does not save (no redirect), no row may change.
"""

import json

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.models import Node, Service
from tests.conftest import tls_material
from tests.integration.test_hostile_api import snapshot

pytestmark = pytest.mark.django_db

# Surrogates cannot be sent as UTF-8 at all, so they are no test of the server.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=80)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
HOSTILE = st.one_of(
    TEXT,
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "web\x00",
            "\n",
            "web\n",
            "-1",
            "-9223372036854775809",
            "99999999999999999999999999",
            "1e309",
            "NaN",
            "{",
            '{"a": ',
            "[]",
            "null",
            '{"zone": "\\u0000"}',
            '{"ports": "80"}',
            '{"replicas": -1}',
            '{"resources": {"cpus": 1e309}}',
            "x" * 100_000,
            "\u202e\ufeff\u0301",
            "🚢" * 1000,
        ]
    ),
    st.integers().map(str),
    JSON.map(json.dumps),
    # The same field twice: the form sees a list where it expects one value.
    st.lists(TEXT, min_size=2, max_size=3),
)


def fields(good):
    """Each field either its good value or a hostile one (or left out)."""
    return st.fixed_dictionaries(
        {},
        optional={name: st.one_of(st.just(value), HOSTILE) for name, value in good.items()},
    ).map(lambda chosen: {**{k: v for k, v in good.items() if k not in chosen}, **chosen})


# Closed ports on 127.0.0.1 (nothing is ever probed there), with TLS as a node needs.
NODE = {
    "name": "n2",
    "endpoint": "tcp://127.0.0.1:2",
    "labels": '{"zone": "b"}',
    "availability": "active",
    **tls_material(),
}
SERVICE = {"name": "api", "image": "busybox:1", "replicas": "1", "options": "{}"}
HYPOTHESIS = settings(
    max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


@pytest.fixture
def rows(db):
    node = Node.objects.create(
        name="n1", endpoint="tcp://127.0.0.1:1", labels={"zone": "a"}, **tls_material()
    )
    from fleet import services
    from fleet.services.spec import ServiceSpecSerializer

    spec = ServiceSpecSerializer(data={"name": "web", "image": "busybox:1"})
    spec.is_valid(raise_exception=True)
    service = services.create(spec.validated_data)
    return node, service


def post_and_check(client, url, data):
    """Post in a savepoint rolled back afterwards, so each example starts alike."""
    with transaction.atomic():
        before = snapshot()
        response = client.post(url, data)
        after = snapshot()
        transaction.set_rollback(True)
    assert response.status_code < 500, (url, data)
    if response.status_code != 302:
        assert after == before, (url, data, "refused but changed rows")
    return response, after


@HYPOTHESIS
@given(data=fields(NODE))
def test_the_node_add_form_survives_hostile_values(admin_client, rows, data):
    response, after = post_and_check(admin_client, "/admin/fleet/node/add/", data)
    if response.status_code == 302:
        saved = {row["name"]: row for row in after["Node"]}[data["name"]]
        Node(**saved).full_clean()


@HYPOTHESIS
@given(data=fields({**NODE, "name": "n1", "endpoint": "tcp://127.0.0.1:1"}))
def test_the_node_change_form_survives_hostile_values(admin_client, rows, data):
    node, _ = rows
    post_and_check(admin_client, f"/admin/fleet/node/{node.pk}/change/", data)


@HYPOTHESIS
@given(data=fields(SERVICE))
def test_the_service_add_form_survives_hostile_values(admin_client, rows, data):
    post_and_check(admin_client, "/admin/fleet/service/add/", data)


@HYPOTHESIS
@given(data=fields({**SERVICE, "name": "web", "options": '{"env": {"A": "1"}}'}))
def test_the_service_change_form_survives_hostile_values(admin_client, rows, data):
    _, service = rows
    post_and_check(admin_client, f"/admin/fleet/service/{service.pk}/change/", data)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(availability=st.one_of(st.sampled_from(["drain", "pause", "active"]), HOSTILE))
def test_the_availability_form_survives_hostile_values(admin_client, rows, availability):
    response, _ = post_and_check(
        admin_client, "/nodes/n1/availability/", {"availability": availability}
    )
    assert response.status_code == 302


def test_a_refused_service_form_changes_nothing_and_says_why(admin_client, rows):
    before = snapshot()
    response = admin_client.post(
        "/admin/fleet/service/add/",
        {"name": "api", "image": "busybox", "replicas": "1", "options": '{"ports": "80"}'},
    )
    assert response.status_code == 200
    assert "ports" in response.content.decode()
    assert snapshot() == before
    assert not Service.objects.filter(name="api").exists()


@pytest.mark.parametrize("labels", ["", "null"])
def test_empty_or_null_labels_in_the_node_form_mean_no_labels(admin_client, rows, labels):
    response = admin_client.post("/admin/fleet/node/add/", {**NODE, "labels": labels})
    assert response.status_code == 302
    assert Node.objects.get(name="n2").labels == {}


@pytest.mark.parametrize("labels", ["[]", '"zone"', "1", '{"zone": 1}'])
def test_labels_that_are_not_an_object_of_strings_are_refused(admin_client, rows, labels):
    response = admin_client.post("/admin/fleet/node/add/", {**NODE, "labels": labels})
    assert response.status_code == 200
    assert not Node.objects.filter(name="n2").exists()
