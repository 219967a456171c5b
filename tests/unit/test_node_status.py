"""A node's status after a ping: unreachable at once, down only once silent long enough."""

from datetime import UTC, datetime, timedelta

from fleet.models import Node, next_status

READY, UNREACHABLE, DOWN = Node.Status.READY, Node.Status.UNREACHABLE, Node.Status.DOWN
UNKNOWN = Node.Status.UNKNOWN
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds):
    return T0 + timedelta(seconds=seconds)


def test_an_answer_makes_any_node_ready_and_forgets_its_silence():
    for status, since in ((UNKNOWN, None), (UNREACHABLE, at(0)), (DOWN, at(0))):
        assert next_status(status, since, True, at(30), at(30), 10) == (READY, None)


def test_one_unanswered_ping_makes_a_ready_node_unreachable_since_it_was_sent():
    assert next_status(READY, None, False, at(5), at(7), 10) == (UNREACHABLE, at(5))
    assert next_status(UNKNOWN, None, False, at(5), at(7), 10) == (UNREACHABLE, at(5))


def test_an_unreachable_node_keeps_the_start_of_its_silence():
    assert next_status(UNREACHABLE, at(0), False, at(4), at(5), 10) == (UNREACHABLE, at(0))


def test_it_goes_down_only_once_silent_for_the_whole_period():
    assert next_status(UNREACHABLE, at(0), False, at(8), at(9.9), 10) == (UNREACHABLE, at(0))
    assert next_status(UNREACHABLE, at(0), False, at(9), at(10), 10) == (DOWN, at(0))


def test_many_failures_close_together_do_not_make_a_node_down():
    status, since = READY, None
    for tenth in range(20):  # twenty failed pings within two seconds
        status, since = next_status(status, since, False, at(tenth / 10), at(tenth / 10), 10)
    assert (status, since) == (UNREACHABLE, at(0))


def test_a_down_node_stays_down_while_silent():
    assert next_status(DOWN, at(0), False, at(60), at(61), 10) == (DOWN, at(0))


def test_a_held_node_is_not_schedulable_until_its_hold_ends():
    node = Node(name="n", status=READY)
    assert node.schedulable
    node.held_until = datetime.now(UTC) + timedelta(minutes=5)
    assert node.held and not node.schedulable
    node.held_until = datetime.now(UTC) - timedelta(seconds=1)
    assert node.schedulable


def test_an_unreachable_node_takes_no_new_replicas():
    assert not Node(name="n", status=UNREACHABLE).schedulable
