"""How a node's status follows its checks."""

from fleet.models import Node, next_status

READY, DOWN, UNKNOWN = Node.Status.READY, Node.Status.DOWN, Node.Status.UNKNOWN


def test_a_node_that_answers_is_ready_whatever_it_was():
    assert next_status(UNKNOWN, 0, 2) == READY
    assert next_status(DOWN, 0, 2) == READY


def test_one_failure_below_the_threshold_keeps_the_status():
    assert next_status(READY, 1, 2) == READY
    assert next_status(UNKNOWN, 1, 2) == UNKNOWN


def test_failures_reaching_the_threshold_mark_it_down():
    assert next_status(READY, 2, 2) == DOWN
    assert next_status(UNKNOWN, 5, 2) == DOWN
    assert next_status(READY, 1, 1) == DOWN
