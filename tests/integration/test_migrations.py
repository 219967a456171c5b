"""Data migrations, run forwards over rows written before them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("fleet", target)])
    return executor.loader.project_state([("fleet", target)]).apps


def latest():
    """Leave the database as the other tests expect: every migration applied."""
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("fleet"))


def test_specs_stored_before_secrets_existed_get_an_empty_secrets_field():
    old = migrate("0006_event_kind_user_role")
    Service, Deployment = old.get_model("fleet", "Service"), old.get_model("fleet", "Deployment")
    service = Service.objects.create(name="web", replicas=1)
    spec = {"image": "demo:1", "env": {"A": "1"}}
    Deployment.objects.create(service=service, revision=1, spec=spec)
    new = migrate("0007_deployment_spec_secrets")
    stored = new.get_model("fleet", "Deployment").objects.get().spec
    assert stored == {**spec, "secrets": {}}
    migrate("0006_event_kind_user_role")
    assert old.get_model("fleet", "Deployment").objects.get().spec == spec
    latest()


def raw_tls_key():
    with connection.cursor() as cursor:
        cursor.execute("SELECT tls_key FROM fleet_node")
        return cursor.fetchone()[0]


def test_tls_keys_stored_in_the_clear_are_sealed_and_opened_again_on_the_way_back():
    from tests.conftest import tls_material

    key = tls_material()["tls_key"]
    old = migrate("0008_replica_set_names")
    old.get_model("fleet", "Node").objects.create(
        name="n1", endpoint="tcp://127.0.0.1:2376", tls_key=key
    )
    assert raw_tls_key() == key
    new = migrate("0011_tls_sealed_keys")
    assert raw_tls_key().startswith("sealed:v1:") and "PRIVATE KEY" not in raw_tls_key()
    assert new.get_model("fleet", "Node").objects.get().tls_key == key
    migrate("0008_replica_set_names")
    assert raw_tls_key() == key
    latest()


def test_plain_tokens_of_drf_authtoken_carry_over_hashed_and_the_plain_table_goes(
    admin_user,
):
    from rest_framework.test import APIClient

    migrate("0012_tls_event_address")
    key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:  # the table DRF's authtoken app kept
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created timestamp NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)",
            [key, "2026-01-02 03:04:05", admin_user.pk],
        )
    latest()
    assert "authtoken_token" not in connection.introspection.table_names()
    with connection.cursor() as cursor:
        cursor.execute("SELECT digest, name FROM fleet_apitoken")
        (digest, name) = cursor.fetchone()
    assert key not in digest and name == "from before hashing"
    from fleet.models import ApiToken

    assert ApiToken.objects.get().created.isoformat() == "2026-01-02T03:04:05+00:00"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/nodes/").status_code == 200  # it goes on working
