"""The converge planner: every rule of rolling updates, rollback and healing, no database."""

from datetime import UTC, datetime, timedelta

import pytest

from fleet.converge.planner import (
    CRASH_LOOP_AFTER,
    POLL,
    START_TIMEOUT,
    Desired,
    NodeState,
    Transition,
    plan,
)
from fleet.models import Deployment, EventKind, Replica
from fleet.services.spec import default_spec

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OLD, NEW = 1, 2  # deployment ids: the revision before and the target
IMAGE = "10.250.8.1:5000/fleet/demo:2"
HEALTH = {"command": ["CMD", "true"], "interval": 1, "timeout": 2, "retries": 3, "start_period": 4}
S, R = Deployment.Status, Replica.State
NODES = [NodeState(1, "lab-1", {}), NodeState(2, "lab-2", {}), NodeState(3, "lab-3", {})]


def desired(replicas=3, status=S.SUCCEEDED, can_roll_back=True, update=None, **spec):
    full = default_spec() | {"image": IMAGE} | spec
    full["update"] = full["update"] | (update or {})
    return Desired(replicas, NEW, status, full, can_roll_back)


def replica(slot, deployment=NEW, state=R.RUNNING, *, node=1, serving_for=60.0, **fields):
    """A replica row as the converge reads it; by default serving for a minute."""
    serving = state == R.RUNNING and fields.get("health", "none") in ("none", "healthy")
    ready = NOW - timedelta(seconds=serving_for) if serving else None
    values = {
        "slot": slot,
        "deployment_id": deployment,
        "node_id": node,
        "state": state,
        "ready_at": ready,
        "started_at": ready,
        "created_at": NOW - timedelta(seconds=max(serving_for, 1)),
    }
    return Replica(**(values | fields))


def old_revision(count=3):
    return [replica(slot, OLD, node=1 + (slot - 1) % 3) for slot in range(1, count + 1)]


def seconds(value):
    return (value - NOW).total_seconds()


# --- steady state, scaling --------------------------------------------------------------


def test_a_service_at_its_desired_state_is_converged():
    rows = [replica(s) for s in (1, 2, 3)]
    result = plan(desired(), rows, NODES, NOW)
    assert result.converged
    assert (result.begin, result.outcome, result.finish) == (None, None, None)


def test_a_pending_revision_begins_and_fills_every_empty_slot_at_once():
    result = plan(desired(status=S.PENDING, update={"parallelism": 1}), [], NODES, NOW)
    assert result.begin == Transition(Transition.BEGIN)
    assert result.new_slots == [1, 2, 3]
    assert result.finish == Transition(Transition.PROGRESS, progress=0)
    assert not result.converged


def test_scaling_up_adds_the_missing_slots():
    rows = [replica(1), replica(2)]
    assert plan(desired(replicas=4), rows, NODES, NOW).new_slots == [3, 4]


def test_scaling_down_removes_the_highest_slots():
    rows = [replica(s) for s in range(1, 6)]
    result = plan(desired(replicas=2), rows, NODES, NOW)
    assert sorted(r.slot for r in result.removals) == [3, 4, 5]
    assert result.new_slots == []


def test_scaling_down_during_a_rollout_removes_the_extra_slots_and_counts_only_the_rest():
    rows = [replica(1), *[replica(s, OLD) for s in (2, 3, 4)]]
    result = plan(desired(replicas=2, status=S.RUNNING), rows, NODES, NOW)
    assert sorted(r.slot for r in result.removals) == [3, 4]
    assert result.new_slots == [2]
    assert result.finish == Transition(Transition.PROGRESS, progress=50)


def test_scaling_to_zero_during_a_rollout_succeeds_once_the_rows_are_gone():
    result = plan(desired(replicas=0, status=S.RUNNING), [replica(1, OLD)], NODES, NOW)
    assert [r.slot for r in result.removals] == [1]
    assert result.finish.kind == Transition.PROGRESS
    done = plan(desired(replicas=0, status=S.RUNNING), [], NODES, NOW)
    assert done.finish == Transition(Transition.SUCCEED, "0 replica(s) serving", 100)


# --- the rolling update -----------------------------------------------------------------


def test_start_first_starts_the_new_replica_before_the_old_one_goes():
    result = plan(desired(status=S.RUNNING), old_revision(), NODES, NOW)
    assert result.new_slots == [1]
    assert [r.slot for r in result.leaving] == [1]
    assert result.removals == []


def test_stop_first_removes_the_old_replica_first():
    result = plan(
        desired(status=S.RUNNING, update={"order": "stop-first"}), old_revision(), NODES, NOW
    )
    assert result.new_slots == [1]
    assert [r.slot for r in result.removals] == [1]
    assert result.leaving == []


def test_a_fixed_published_port_forces_stop_first():
    ports = [{"container": 80, "published": 8080, "protocol": "tcp"}]
    result = plan(desired(status=S.RUNNING, ports=ports), old_revision(), NODES, NOW)
    assert [r.slot for r in result.removals] == [1]
    assert result.leaving == []


def test_a_port_docker_picks_does_not_force_stop_first():
    ports = [{"container": 80, "published": None, "protocol": "tcp"}]
    result = plan(desired(status=S.RUNNING, ports=ports), old_revision(), NODES, NOW)
    assert result.removals == [] and [r.slot for r in result.leaving] == [1]


def test_parallelism_sets_how_many_slots_update_at_once():
    result = plan(desired(status=S.RUNNING, update={"parallelism": 2}), old_revision(), NODES, NOW)
    assert result.new_slots == [1, 2]


def test_new_replicas_not_yet_serving_count_against_parallelism():
    rows = [replica(1, state=R.PENDING, serving_for=1), *old_revision()]
    result = plan(desired(status=S.RUNNING, update={"parallelism": 1}), rows, NODES, NOW)
    assert result.new_slots == []
    assert result.removals == []  # the old replica of slot 1 stays until the new one serves
    assert result.wait == POLL


def test_a_new_replica_that_serves_lets_the_old_go_and_the_next_batch_start_within_its_monitor():
    rows = [replica(1, serving_for=1), *old_revision()]
    result = plan(desired(status=S.RUNNING, update={"monitor": 5}), rows, NODES, NOW)
    assert [(r.slot, r.deployment_id) for r in result.removals] == [(1, OLD)]
    assert result.new_slots == [2]
    assert result.finish == Transition(Transition.PROGRESS, progress=0)  # not proven yet


def test_a_new_replica_that_fails_within_its_monitor_still_fails_the_revision():
    rows = [replica(1, state=R.EXITED, exit_code=1, serving_for=1), replica(2), replica(3, OLD)]
    result = plan(desired(status=S.RUNNING, update={"monitor": 5}), rows, NODES, NOW)
    assert result.outcome == Transition(Transition.ROLL_BACK, "slot 1 exited with code 1")


def test_the_rollout_succeeds_only_once_the_last_batch_served_for_the_monitor_period():
    rows = [replica(1), replica(2), replica(3, serving_for=4)]
    result = plan(desired(status=S.RUNNING, update={"monitor": 5}), rows, NODES, NOW)
    assert result.finish == Transition(Transition.PROGRESS, progress=66)
    rows = [replica(1), replica(2), replica(3, serving_for=5)]
    result = plan(desired(status=S.RUNNING, update={"monitor": 5}), rows, NODES, NOW)
    assert result.finish.kind == Transition.SUCCEED


def test_a_converge_looks_again_the_moment_the_last_monitor_period_ends():
    rows = [replica(1), replica(2), replica(3, serving_for=4.9)]
    result = plan(desired(status=S.RUNNING, update={"monitor": 5}), rows, NODES, NOW)
    assert result.wait == pytest.approx(0.1)


def test_a_delay_is_waited_out_to_the_moment_it_ends():
    rows = [replica(1, serving_for=9.95), *old_revision()]
    result = plan(desired(status=S.RUNNING, update={"monitor": 5, "delay": 10}), rows, NODES, NOW)
    assert result.new_slots == [] and result.wait == pytest.approx(0.05)


def test_a_monitor_of_zero_proves_a_replica_as_soon_as_it_serves():
    rows = [replica(1, serving_for=0), replica(2), replica(3)]
    result = plan(desired(status=S.RUNNING, update={"monitor": 0}), rows, NODES, NOW)
    assert result.finish.kind == Transition.SUCCEED


def test_delay_holds_the_next_batch_after_the_last_one_served():
    rows = [replica(1, serving_for=8), *old_revision()]
    held = plan(desired(status=S.RUNNING, update={"monitor": 5, "delay": 10}), rows, NODES, NOW)
    assert held.new_slots == [] and held.wait == POLL
    rows = [replica(1, serving_for=10), *old_revision()]
    free = plan(desired(status=S.RUNNING, update={"monitor": 5, "delay": 10}), rows, NODES, NOW)
    assert free.new_slots == [2]


def test_a_new_replica_still_starting_its_health_checks_is_not_serving_and_holds_the_old_one():
    rows = [replica(1, health="starting"), *old_revision()]
    result = plan(desired(status=S.RUNNING, healthcheck=HEALTH), rows, NODES, NOW)
    assert result.removals == [] and result.new_slots == []
    assert result.outcome is None and result.wait == POLL


def test_a_healthy_new_replica_serves_and_counts_toward_the_rollout():
    rows = [replica(1, health="healthy", serving_for=10), *old_revision()]
    result = plan(desired(status=S.RUNNING, healthcheck=HEALTH), rows, NODES, NOW)
    assert [r.slot for r in result.removals] == [1]
    assert result.finish == Transition(Transition.PROGRESS, progress=0)  # slot 1 has two rows


def test_a_rollout_succeeds_once_every_slot_runs_one_proven_replica_of_the_target():
    result = plan(desired(status=S.RUNNING), [replica(s) for s in (1, 2, 3)], NODES, NOW)
    assert result.finish == Transition(Transition.SUCCEED, "3 replica(s) serving", 100)
    assert result.converged


def test_a_rollout_reports_progress_as_the_share_of_slots_done():
    rows = [replica(1), *old_revision()[1:]]
    result = plan(desired(status=S.RUNNING), rows, NODES, NOW)
    assert result.finish == Transition(Transition.PROGRESS, progress=33)


def test_a_rollout_does_not_succeed_while_a_restart_is_planned():
    rows = [replica(1), replica(2), replica(3, restart_requested=True)]
    result = plan(desired(status=S.RUNNING), rows, NODES, NOW)
    assert result.finish.kind == Transition.PROGRESS


# --- a failed rollout -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"state": R.EXITED, "exit_code": 3}, "slot 1 exited with code 3"),
        ({"health": "unhealthy"}, "slot 1 is unhealthy"),
        (
            {"state": R.FAILED, "error": "cannot pull x:404: not found"},
            "slot 1 cannot pull x:404: not found",
        ),
    ],
)
def test_a_broken_new_replica_rolls_the_rollout_back_and_the_old_one_keeps_serving(fields, reason):
    bad = replica(1, **fields)
    result = plan(desired(status=S.RUNNING), [bad, *old_revision()], NODES, NOW)
    assert result.outcome == Transition(Transition.ROLL_BACK, reason)
    assert result.removals == [bad]
    assert result.new_slots == [] and result.finish is None


def test_a_new_replica_that_does_not_come_up_in_time_fails_the_rollout():
    late = replica(1, state=R.PENDING, serving_for=START_TIMEOUT + 1)
    result = plan(desired(status=S.RUNNING), [late, *old_revision()], NODES, NOW)
    assert result.outcome == Transition(Transition.ROLL_BACK, "slot 1 was not running after 91 s")


def test_the_start_timeout_grows_with_the_health_check():
    allowed = START_TIMEOUT + 4 + (1 + 2) * 4
    waiting = replica(1, health="starting", serving_for=allowed)
    rows = [waiting, *old_revision()]
    assert plan(desired(status=S.RUNNING, healthcheck=HEALTH), rows, NODES, NOW).outcome is None
    late = replica(1, health="starting", serving_for=allowed + 1)
    result = plan(
        desired(status=S.RUNNING, healthcheck=HEALTH), [late, *old_revision()], NODES, NOW
    )
    assert result.outcome.reason == f"slot 1 was not healthy after {allowed + 1} s"


def test_pause_halts_a_failed_rollout_instead_of_rolling_back():
    bad = replica(1, state=R.EXITED, exit_code=1)
    spec = desired(status=S.RUNNING, update={"failure_action": "pause"})
    assert plan(spec, [bad, *old_revision()], NODES, NOW).outcome.kind == Transition.PAUSE


def test_a_failed_rollout_without_an_earlier_good_revision_fails():
    bad = replica(1, state=R.EXITED, exit_code=1)
    result = plan(desired(status=S.RUNNING, can_roll_back=False), [bad], NODES, NOW)
    assert result.outcome.kind == Transition.FAIL
    assert result.removals == []  # no old replica to fall back on: it is healed instead


def test_a_replica_that_breaks_after_its_rollout_succeeded_is_healed_not_rolled_back():
    crashed = replica(1, state=R.EXITED, exit_code=1)
    result = plan(desired(status=S.SUCCEEDED), [crashed, replica(2), replica(3)], NODES, NOW)
    assert result.outcome is None
    assert [r.row for r in result.retries] == [crashed]


def test_a_halted_update_keeps_the_old_replicas_and_starts_no_batch():
    result = plan(desired(status=S.FAILED), old_revision(), NODES, NOW)
    assert result.new_slots == [] and result.removals == []
    assert result.converged


def test_a_halted_update_removes_a_broken_new_replica_beside_a_serving_old_one():
    bad = replica(1, state=R.EXITED, exit_code=1)
    result = plan(desired(status=S.FAILED), [bad, *old_revision()], NODES, NOW)
    assert result.removals == [bad] and result.outcome is None


def test_a_halted_update_heals_a_broken_old_replica_whatever_the_new_restart_policy():
    broken = replica(2, OLD, state=R.EXITED, exit_code=0, retry_at=NOW - timedelta(seconds=1))
    rows = [old_revision()[0], broken, old_revision()[2]]
    result = plan(desired(status=S.FAILED, restart_policy="none"), rows, NODES, NOW)
    assert [r.row for r in result.restarts] == [broken]


# --- restart policy and backoff ---------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "exit_code", "restarted"),
    [
        ("any", 0, True),
        ("any", 1, True),
        ("on-failure", 0, False),
        ("on-failure", 1, True),
        ("none", 0, False),
        ("none", 1, False),
    ],
)
def test_the_restart_policy_decides_whether_an_exited_replica_starts_again(
    policy, exit_code, restarted
):
    row = replica(1, state=R.EXITED, exit_code=exit_code, retry_at=NOW - timedelta(seconds=1))
    result = plan(desired(1, restart_policy=policy), [row], NODES, NOW)
    assert bool(result.restarts) == restarted


@pytest.mark.parametrize(
    ("restarts", "backoff"),
    [(0, 1), (1, 2), (2, 4), (3, 8), (4, 16), (5, 32), (6, 60), (9, 60)],
)
def test_a_failed_replica_backs_off_1_2_4_seconds_and_so_on_up_to_a_minute(restarts, backoff):
    row = replica(1, state=R.EXITED, exit_code=1, restarts=restarts, serving_for=5)
    result = plan(desired(1), [row], NODES, NOW)
    assert [(r.row, seconds(r.retry_at), r.restarts) for r in result.retries] == [
        (row, backoff, restarts)
    ]
    assert result.restarts == []


def test_a_short_backoff_is_waited_out_and_a_long_one_left_to_the_reconcile():
    short = plan(desired(1), [replica(1, state=R.EXITED, exit_code=1)], NODES, NOW)
    assert short.wait == 1 and not short.converged
    long = plan(desired(1), [replica(1, state=R.EXITED, exit_code=1, restarts=4)], NODES, NOW)
    assert long.wait is None and long.converged


def test_a_replica_restarts_once_its_backoff_is_over_and_the_restart_is_counted():
    row = replica(1, state=R.EXITED, exit_code=1, restarts=1, retry_at=NOW)
    result = plan(desired(1), [row], NODES, NOW)
    [restart] = result.restarts
    assert (restart.row, restart.restarts, restart.event) == (row, 2, None)
    assert result.retries == []


def test_a_replica_still_in_its_backoff_is_left_alone():
    row = replica(1, state=R.EXITED, exit_code=1, retry_at=NOW + timedelta(seconds=30))
    result = plan(desired(1), [row], NODES, NOW)
    assert result.restarts == [] and result.retries == [] and result.converged


def test_a_minute_of_running_resets_the_restart_count():
    started = NOW - timedelta(seconds=61)
    row = replica(1, state=R.EXITED, exit_code=1, restarts=6, started_at=started)
    [retry] = plan(desired(1), [row], NODES, NOW).retries
    assert (seconds(retry.retry_at), retry.restarts) == (1, 0)


def test_the_third_restart_in_a_row_is_reported_as_a_crash_loop():
    row = replica(1, state=R.EXITED, exit_code=3, restarts=CRASH_LOOP_AFTER - 1, retry_at=NOW)
    [restart] = plan(desired(1), [row], NODES, NOW).restarts
    assert restart.event == EventKind.REPLICA_CRASH_LOOPING
    assert restart.reason == "slot 1 exited with code 3, restarted 3 times"


def test_an_operator_restart_happens_at_once_without_backoff_or_count():
    row = replica(2, restart_requested=True, restarts=4)
    result = plan(desired(), [replica(1), row, replica(3)], NODES, NOW)
    [restart] = result.restarts
    assert (restart.row, restart.restarts, restart.event, restart.node_id) == (row, 4, None, None)
    assert result.retries == []


# --- where a restarted replica goes -----------------------------------------------------


def test_a_replica_of_a_down_node_moves_at_once():
    nodes = [NODES[0], NodeState(2, "lab-2", {}, down=True, schedulable=False), NODES[2]]
    lost = replica(2, state=R.MISSING, node=2, error="node lab-2 is down")
    [restart] = plan(desired(), [replica(1), lost, replica(3)], nodes, NOW).restarts
    assert (restart.row, restart.node_id) == (lost, None)
    assert (restart.event, restart.reason) == (
        EventKind.REPLICA_RESCHEDULED,
        "slot 2 node lab-2 is down",
    )


def test_an_old_replica_of_a_down_node_moves_at_once_during_a_rollout_not_when_its_turn_comes():
    nodes = [NODES[0], NodeState(2, "lab-2", {}, down=True, schedulable=False), NODES[2]]
    lost = replica(3, OLD, state=R.MISSING, node=2, error="node lab-2 is down")
    rows = [replica(1, state=R.PENDING, serving_for=1), replica(1, OLD), replica(2, OLD), lost]
    result = plan(desired(status=S.RUNNING, update={"parallelism": 1}), rows, nodes, NOW)
    [restart] = result.restarts
    assert (restart.row, restart.node_id, restart.event) == (
        lost,
        None,
        EventKind.REPLICA_RESCHEDULED,
    )
    assert result.new_slots == []  # slot 1 is still in flight: the update itself waits
    assert result.finish.kind == Transition.PROGRESS


def test_a_rollout_updates_the_slots_that_cannot_serve_first():
    rows = [replica(1, OLD), replica(2, OLD), replica(3, OLD, state=R.EXITED, exit_code=1)]
    result = plan(desired(status=S.RUNNING, update={"parallelism": 1}), rows, NODES, NOW)
    assert result.new_slots == [3]


def test_a_replica_of_a_removed_node_moves_at_once():
    lost = replica(1, state=R.MISSING, node=None, error="node 9 is down or removed")
    assert [r.row for r in plan(desired(1), [lost], NODES, NOW).restarts] == [lost]


def test_a_replica_of_a_node_that_did_not_answer_but_is_not_down_backs_off():
    nodes = [NodeState(1, "lab-1", {}, down=False, schedulable=False)]
    unsure = replica(1, state=R.MISSING, error="its container is gone")
    result = plan(desired(1), [unsure], nodes, NOW)
    assert result.restarts == []
    assert [seconds(r.retry_at) for r in result.retries] == [1]


def test_a_replica_that_could_not_be_created_restarts_on_its_own_node():
    failed = replica(2, state=R.FAILED, node=2, error="cannot pull x:404", retry_at=NOW)
    [restart] = plan(desired(), [replica(1), failed, replica(3)], NODES, NOW).restarts
    assert (restart.node_id, restart.restarts) == (2, 1)


def test_a_crashed_replica_restarts_on_its_own_node():
    crashed = replica(1, state=R.EXITED, exit_code=1, node=3, retry_at=NOW)
    [restart] = plan(desired(1), [crashed], NODES, NOW).restarts
    assert restart.node_id == 3


def test_a_failed_replica_whose_node_takes_no_new_replicas_is_placed_anew():
    nodes = [NODES[0], NodeState(2, "lab-2", {}, schedulable=False)]
    failed = replica(1, state=R.FAILED, node=2, retry_at=NOW)
    [restart] = plan(desired(1), [failed], nodes, NOW).restarts
    assert restart.node_id is None


def test_a_failed_replica_whose_node_no_longer_meets_the_constraints_is_placed_anew():
    nodes = [NodeState(1, "lab-1", {"zone": "b"})]
    failed = replica(1, state=R.FAILED, node=1, retry_at=NOW)
    [restart] = plan(desired(1, constraints=["zone==a"]), [failed], nodes, NOW).restarts
    assert restart.node_id is None


def test_a_vanished_container_on_a_live_node_is_rescheduled_after_its_backoff():
    vanished = replica(1, state=R.MISSING, error="its container is gone", retry_at=NOW)
    [restart] = plan(desired(1), [vanished], NODES, NOW).restarts
    assert (restart.node_id, restart.event) == (None, EventKind.REPLICA_RESCHEDULED)


# --- a drained node ---------------------------------------------------------------------

DRAINED_2 = [NODES[0], NodeState(2, "lab-2", {}, schedulable=False, draining=True), NODES[2]]


def test_a_replica_of_a_drained_node_is_moved_elsewhere():
    on_drained = replica(2, node=2)
    result = plan(desired(), [replica(1), on_drained, replica(3, node=3)], DRAINED_2, NOW)
    [restart] = result.restarts
    assert (restart.row, restart.node_id, restart.restarts) == (on_drained, None, 0)
    assert (restart.event, restart.reason) == (
        EventKind.REPLICA_RESCHEDULED,
        "slot 2 moved off lab-2, which was drained",
    )
    assert result.new_slots == [] and result.removals == []


def test_replicas_leave_a_drained_node_parallelism_at_a_time():
    rows = [replica(1, node=2), replica(2, node=2), replica(3, node=2)]
    result = plan(desired(update={"parallelism": 2}), rows, DRAINED_2, NOW)
    assert [r.row.slot for r in result.restarts] == [1, 2]
    assert result.wait is not None  # the third goes once one of them serves again
    rows[0] = replica(1, state=R.PENDING, node=1, serving_for=0)
    result = plan(desired(update={"parallelism": 2}), rows, DRAINED_2, NOW)
    assert [r.row.slot for r in result.restarts] == [2]


def test_a_replica_moved_off_a_drained_node_that_fails_backs_off_like_any_other():
    failed = replica(1, state=R.FAILED, node=3, error="cannot pull", serving_for=0)
    result = plan(desired(1), [failed], DRAINED_2, NOW)
    assert result.restarts == []
    assert [r.row for r in result.retries] == [failed]


def test_a_paused_node_keeps_its_replicas():
    paused = [NODES[0], NodeState(2, "lab-2", {}, schedulable=False), NODES[2]]
    rows = [replica(1), replica(2, node=2), replica(3, node=3)]
    assert plan(desired(), rows, paused, NOW).converged
