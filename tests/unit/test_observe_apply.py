"""What a container listing or event does to a replica row, and which Event it deserves."""

from datetime import UTC, datetime, timedelta

from fleet.engine.containers import ObservedContainer
from fleet.models import EventKind, Replica
from fleet.nodes.observe import _apply

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(seconds=30)
R = Replica.State


def seen(state="running", health="none", exit_code=None, host_ports=None):
    return ObservedContainer(
        id="c1",
        name="web.1.abc",
        labels={},
        state=state,
        health=health,
        exit_code=exit_code,
        host_ports=host_ports,
        created=0,
    )


def running(**fields):
    values = {"slot": 1, "state": R.RUNNING, "started_at": EARLIER, "ready_at": EARLIER}
    return Replica(**(values | fields))


def test_a_pending_replica_seen_running_starts_serving_now():
    replica = Replica(slot=1)
    assert _apply(replica, seen(host_ports={"80/tcp": 49153}), NOW) == EventKind.REPLICA_STARTED
    assert (replica.state, replica.started_at, replica.ready_at) == (R.RUNNING, NOW, NOW)
    assert replica.host_ports == {"80/tcp": 49153}


def test_a_container_with_a_health_check_serves_only_once_healthy():
    replica = Replica(slot=1)
    assert _apply(replica, seen(health="starting"), NOW) is None
    assert (replica.state, replica.ready_at) == (R.RUNNING, None)
    assert _apply(replica, seen(health="healthy"), NOW) == EventKind.REPLICA_STARTED
    assert replica.ready_at == NOW


def test_a_serving_replica_keeps_its_ready_time_while_it_serves():
    replica = running()
    assert _apply(replica, seen(), NOW) is None
    assert (replica.started_at, replica.ready_at) == (EARLIER, EARLIER)


def test_an_exit_is_a_death_with_its_code():
    replica = running()
    assert _apply(replica, seen("exited", exit_code=137), NOW) == EventKind.REPLICA_DIED
    assert (replica.state, replica.exit_code, replica.finished_at) == (R.EXITED, 137, NOW)
    assert replica.ready_at is None


def test_turning_unhealthy_is_reported_and_ends_serving():
    replica = running(health="healthy")
    assert _apply(replica, seen(health="unhealthy"), NOW) == EventKind.REPLICA_UNHEALTHY
    assert replica.ready_at is None


def test_a_container_that_is_gone_makes_the_replica_missing_with_a_reason():
    replica = running()
    assert _apply(replica, None, NOW) is None
    assert (replica.state, replica.error, replica.ready_at) == (
        R.MISSING,
        "its container is gone",
        None,
    )


def test_a_missing_replica_keeps_the_reason_it_already_has():
    replica = running(error="node lab-2 is down")
    _apply(replica, None, NOW)
    assert replica.error == "node lab-2 is down"


def test_an_event_without_ports_keeps_the_ports_a_listing_found():
    replica = running(host_ports={"80/tcp": 49153})
    _apply(replica, seen(host_ports=None), NOW)
    assert replica.host_ports == {"80/tcp": 49153}


def test_the_same_observation_twice_deserves_no_second_event():
    replica = Replica(slot=1)
    assert _apply(replica, seen(), NOW) == EventKind.REPLICA_STARTED
    assert _apply(replica, seen(), NOW + timedelta(seconds=1)) is None
    assert replica.ready_at == NOW


def test_a_paused_or_restarting_container_counts_as_running():
    for state in ("paused", "restarting"):
        replica = Replica(slot=1)
        _apply(replica, seen(state), NOW)
        assert replica.state == R.RUNNING
