"""The lease on a service: at most one converge works on it, and a dead one's claim lapses."""

from datetime import timedelta

from django.db import connections
from django.db.models import Q
from django.utils import timezone

from .models import Service

LEASE = timedelta(seconds=12)  # renewed every 4 s while a converge runs


def claim(service_id, owner):
    """Take (or extend) the lease on a service; False when another converge holds it."""
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner)
    updated = Service.objects.filter(free, pk=service_id).update(
        lease_owner=owner, lease_until=now + LEASE
    )
    return updated == 1


def release(service_id, owner):
    Service.objects.filter(pk=service_id, lease_owner=owner).update(
        lease_owner="", lease_until=None
    )


def keep_lease(service_id, owner, stop):
    """Renew the lease while a pass works (a pull may take minutes); a dead worker stops it."""
    try:
        while not stop.wait(LEASE.total_seconds() / 3):
            if not claim(service_id, owner):
                return
    finally:
        connections.close_all()
