"""The lease on a service: at most one converge acts on it, and a dead one's claim lapses.

A lease is fenced: once it lapsed it is lost for good, even if nobody took it
meanwhile, and a converge checks it before every batch of engine work, so one
that was held up (a frozen engine, a slow database) never acts beside the
converge that took over. The keep-alive rides out a database that errs for a
moment, and gives up only when the lease is really gone.
"""

import logging
import threading
import time
import uuid
from datetime import timedelta

from django.db import DatabaseError, connections
from django.db.models import Q
from django.utils import timezone

from fleet.models import Service

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=12)
RENEW_EVERY = LEASE.total_seconds() / 3
RETRY_AFTER = 1.0  # seconds before a keep-alive tries again after a database error


class LeaseLost(Exception):
    """The converge no longer holds the service's lease: it must stop acting at once."""


def claim(service_id: int, owner: str) -> bool:
    """Take (or extend) the lease on a service; False when another converge holds it."""
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner)
    updated = Service.objects.filter(free, pk=service_id).update(
        lease_owner=owner, lease_until=now + LEASE
    )
    return updated == 1


def renew(service_id: int, owner: str) -> bool:
    """Extend a lease still held, never one that lapsed; False when it is not ours any more."""
    now = timezone.now()
    updated = Service.objects.filter(pk=service_id, lease_owner=owner, lease_until__gte=now).update(
        lease_until=now + LEASE
    )
    return updated == 1


def release(service_id: int, owner: str) -> None:
    Service.objects.filter(pk=service_id, lease_owner=owner).update(
        lease_owner="", lease_until=None
    )


class Lease:
    """One converge's hold on one service, kept alive by a thread while it works."""

    renew_every, retry_after = RENEW_EVERY, RETRY_AFTER

    def __init__(self, service_id: int, owner: str | None = None) -> None:
        self.service_id = service_id
        self.owner = owner or uuid.uuid4().hex
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._expires = 0.0  # time.monotonic() by which the lease lapses unless renewed

    def claim(self) -> bool:
        """Take the lease and keep it alive; False when another converge holds it."""
        if not claim(self.service_id, self.owner):
            return False
        self._expires = time.monotonic() + LEASE.total_seconds()
        self.keeper = threading.Thread(target=self._keep, daemon=True)
        self.keeper.start()
        return True

    def ensure(self) -> None:
        """Renew the lease before acting; raise LeaseLost when it is not ours any more."""
        if self.lost.is_set() or time.monotonic() >= self._expires:
            self.lost.set()
            raise LeaseLost(f"the lease on service {self.service_id} lapsed")
        if not self._renew():
            raise LeaseLost(f"another converge holds service {self.service_id}")

    def release(self) -> None:
        self._stop.set()
        release(self.service_id, self.owner)

    def _renew(self) -> bool:
        started = time.monotonic()
        if self._extend():
            self._expires = started + LEASE.total_seconds()
            return True
        self.lost.set()
        return False

    def _extend(self) -> bool:
        return renew(self.service_id, self.owner)

    def _keep(self) -> None:
        """Renew the lease every few seconds while the converge works (a pull may take
        minutes); stop when it is released or lost. A database error is tried again
        soon: only a lease that lapsed meanwhile is lost."""
        try:
            interval = self.renew_every
            while not self._stop.wait(interval):
                try:
                    if not self._renew():
                        return
                    interval = self.renew_every
                except DatabaseError as exc:
                    log.warning("could not renew the lease on %s: %s", self.service_id, exc)
                    connections.close_all()  # a broken connection is opened afresh
                    interval = self.retry_after
        finally:
            connections.close_all()
