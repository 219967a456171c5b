"""When the reconcile hands a service to a converge, from its rows alone, no database."""

from datetime import UTC, datetime, timedelta

from fleet.converge.reconcile import needs_converge
from fleet.models import Deployment, Replica, Service

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OLD, NEW = 1, 2
S, R = Deployment.Status, Replica.State


def service(replicas=2, status=S.SUCCEEDED, deleting=False):
    target = Deployment(pk=NEW, revision=2, status=status, spec={})
    return Service(name="web", replicas=replicas, current_deployment=target, deleting=deleting)


def replica(slot, deployment=NEW, state=R.RUNNING, **fields):
    return Replica(slot=slot, deployment_id=deployment, state=state, **fields)


def serving(count):
    return [replica(slot) for slot in range(1, count + 1)]


def test_a_service_serving_every_slot_of_its_revision_needs_nothing():
    assert not needs_converge(service(), serving(2), NOW)


def test_a_service_being_deleted_needs_a_converge():
    assert needs_converge(service(deleting=True), serving(2), NOW)


def test_a_pending_or_running_rollout_needs_a_converge():
    assert needs_converge(service(status=S.PENDING), [], NOW)
    assert needs_converge(service(status=S.RUNNING), serving(2), NOW)


def test_a_missing_slot_needs_a_converge():
    assert needs_converge(service(replicas=3), serving(2), NOW)


def test_a_slot_above_the_count_needs_a_converge():
    assert needs_converge(service(replicas=1), serving(2), NOW)


def test_a_restart_an_operator_asked_for_needs_a_converge():
    rows = [replica(1), replica(2, restart_requested=True)]
    assert needs_converge(service(), rows, NOW)


def test_a_replica_of_an_older_revision_needs_a_converge_unless_the_update_is_halted():
    rows = [replica(1), replica(2, OLD)]
    assert needs_converge(service(), rows, NOW)
    assert not needs_converge(service(status=S.FAILED), rows, NOW)


def test_a_broken_replica_in_its_backoff_is_left_until_the_backoff_is_over():
    backing_off = replica(2, state=R.EXITED, retry_at=NOW + timedelta(seconds=30))
    assert not needs_converge(service(), [replica(1), backing_off], NOW)
    backing_off.retry_at = NOW - timedelta(seconds=1)
    assert needs_converge(service(), [replica(1), backing_off], NOW)


def test_a_broken_replica_without_a_backoff_needs_a_converge():
    assert needs_converge(service(), [replica(1), replica(2, state=R.EXITED)], NOW)


def test_an_unhealthy_replica_is_not_serving():
    assert needs_converge(service(), [replica(1), replica(2, health="unhealthy")], NOW)


def test_a_replica_on_a_drained_node_needs_a_converge_while_another_node_can_take_it():
    rows = serving(2)
    rows[1].node_id = 7
    assert needs_converge(service(), rows, NOW, draining={7})
    assert not needs_converge(service(), rows, NOW, draining={8})
