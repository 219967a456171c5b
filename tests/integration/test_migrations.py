"""Data migrations, run forwards over rows written before them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(target=None):
    """Migrate fleet to `target`, or to its newest migration; return the apps as of then."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    if target is None:
        (_, target), *_ = executor.loader.graph.leaf_nodes("fleet")
    executor.migrate([("fleet", target)])
    return executor.loader.project_state([("fleet", target)]).apps


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
    migrate()  # leave the database as the other tests expect: at the newest migration
