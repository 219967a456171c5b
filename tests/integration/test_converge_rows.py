"""Converge steps that meet rows an engine never sees: what they record and leave."""

import threading

import pytest

from fleet import services
from fleet.converge import containers
from fleet.models import Replica
from fleet.services.spec import ServiceSpecSerializer

# Committed rows: a step runs in a thread of its own, as in the worker, with its own connection.
pytestmark = pytest.mark.django_db(transaction=True)


def test_a_replica_whose_node_was_removed_before_its_start_is_missing_not_a_crash():
    spec = ServiceSpecSerializer(data={"name": "web", "image": "demo:1", "replicas": 1})
    spec.is_valid(raise_exception=True)
    service = services.create(spec.validated_data)
    # Placed on a node that was removed since: the row's node is gone (SET_NULL).
    row = Replica.objects.create(service=service, deployment=service.current_deployment, slot=1)
    step = threading.Thread(target=containers.start, args=(row,))
    step.start()
    step.join(30)
    row.refresh_from_db()
    assert row.state == Replica.State.MISSING
    assert "its node was removed" in row.error
    assert row.container_id == ""
