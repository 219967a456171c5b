"""containers.Calls: engine calls a converge lets run while it looks again."""

import threading

import pytest

from fleet import containers


def test_calls_run_at_once_and_say_when_they_are_done():
    release, ended = threading.Event(), []
    calls = containers.Calls(on_done=lambda: ended.append(1))
    try:
        calls.submit([(release.wait, 5), (release.wait, 5)])
        assert calls.busy()
        release.set()
        calls.wait()
        assert not calls.busy()
        assert len(ended) == 2
    finally:
        calls.close()


def test_a_call_that_failed_raises_where_the_converge_next_asks():
    def broken():
        raise RuntimeError("engine said no")

    calls = containers.Calls()
    try:
        calls.submit([(broken,)])
        with pytest.raises(RuntimeError, match="engine said no"):
            calls.wait()
        assert not calls.busy()  # raised once, then forgotten
    finally:
        calls.close()


def test_containers_being_removed_are_not_orphans_until_their_removal_ends():
    containers.will_go(["abc", ""])
    assert "abc" in containers.going()
    assert "" not in containers.going()
    with containers._going_away("abc"):
        assert "abc" in containers.going()
    assert "abc" not in containers.going()
