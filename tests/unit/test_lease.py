"""The lease's keep-alive and fence, with the database write replaced by a script.

A transient database error cannot be made on demand against the real database
(SQLite waits out a lock for 30 s, longer than the lease), so the one write is
scripted here; the lease against the database is tested in the integration tests.
"""

import threading

import pytest
from django.db import OperationalError

from fleet.converge.lease import Lease, LeaseLost


class ScriptedLease(Lease):
    """A lease whose renewals answer from a script: True, False, or an error to raise."""

    renew_every = retry_after = 0.01

    def __init__(self, answers):
        super().__init__(service_id=1, owner="me")
        self.answers, self.calls = list(answers), 0
        self.done = threading.Event()

    def _extend(self):
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else True
        if not self.answers:
            self.done.set()
        if isinstance(answer, Exception):
            raise answer
        return answer


def keep(lease):
    lease._expires = float("inf")
    thread = threading.Thread(target=lease._keep, daemon=True)
    thread.start()
    return thread


def test_the_keep_alive_rides_out_database_errors_and_keeps_renewing():
    lease = ScriptedLease([OperationalError("database is locked")] * 3 + [True, True])
    thread = keep(lease)
    assert lease.done.wait(5)
    assert thread.is_alive() and not lease.lost.is_set()
    lease._stop.set()
    thread.join(5)
    assert lease.calls >= 5


def test_the_keep_alive_stops_and_marks_the_lease_lost_when_it_is_not_ours_any_more():
    lease = ScriptedLease([True, OperationalError("gone away"), False])
    thread = keep(lease)
    thread.join(5)
    assert not thread.is_alive()
    assert lease.lost.is_set()
    with pytest.raises(LeaseLost):
        lease.ensure()
    assert lease.calls == 3  # ensure() did not even ask: the lease is known lost


def test_a_lease_past_its_time_is_lost_without_asking_the_database():
    lease = ScriptedLease([True])
    lease._expires = 0.0
    with pytest.raises(LeaseLost, match="lapsed"):
        lease.ensure()
    assert lease.calls == 0 and lease.lost.is_set()


def test_ensure_renews_a_lease_still_held():
    lease = ScriptedLease([True])
    lease._expires = float("inf")
    lease.ensure()
    assert lease.calls == 1 and not lease.lost.is_set()
