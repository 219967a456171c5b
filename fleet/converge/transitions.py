"""How a deployment's rollout ends: begun, succeeded, failed, paused or rolled back.

Every change of a deployment's status is made here, by the converge and by an
operator's rollback alike, each as a conditional update or under a row lock so
that two workers never both make it; each is shown live and, where it matters,
recorded as an Event.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from fleet import live
from fleet.models import SYSTEM, Actor, Deployment, Event, EventKind, Service

log = logging.getLogger(__name__)

Status = Deployment.Status


def begin(deployment: Deployment, now: datetime) -> bool:
    """A pending revision starts rolling out; False when it was not pending any more."""
    started = Deployment.objects.filter(pk=deployment.pk, status=Status.PENDING).update(
        status=Status.RUNNING, started_at=now
    )
    if started:
        deployment.refresh_from_db()
        live.broadcast("deployment", deployment.pk)
    return bool(started)


def roll_back(
    service: Service, current: Deployment, good: Deployment, reason: str, actor: Actor = SYSTEM
) -> None:
    """Make `good` the service's revision again in place of `current` (locked by the caller).

    The one way back, whether a failed rollout takes it by itself or an operator asks.
    """
    current.status = Status.ROLLED_BACK
    current.reason = reason
    current.finished_at = current.finished_at or timezone.now()
    current.save()
    good.resume()
    Service.objects.filter(pk=service.pk).update(
        current_deployment=good, generation=F("generation") + 1
    )
    live.broadcast("deployment", current.pk)
    live.broadcast("service", service.name)
    Event.objects.record(
        EventKind.DEPLOYMENT_ROLLED_BACK,
        actor=actor,
        service=service,
        old=f"revision {current.revision}",
        new=f"revision {good.revision}",
        reason=reason,
    )


@transaction.atomic
def fail(service: Service, deployment: Deployment, reason: str, halt: str, now: datetime) -> bool:
    """A rolling-out revision failed: roll back to the last good one, or halt it.

    `halt` is "roll_back", "pause" or "fail", as the planner chose; a rollback
    without a revision to go back to fails instead. Returns False when the
    deployment was not rolling out any more (someone else decided first).
    """
    # The service first, then the deployment: the order an operator's rollback takes.
    Service.objects.select_for_update().filter(pk=service.pk).first()
    target = Deployment.objects.select_for_update().get(pk=deployment.pk)
    if target.status != Status.RUNNING:
        return False
    log.warning("%s revision %s failed: %s (%s)", service.name, target.revision, reason, halt)
    good = Deployment.objects.rollback_target(service, target) if halt == "roll_back" else None
    if good is not None:
        roll_back(service, target, good, f"{reason}; rolled back to revision {good.revision}")
        return True
    target.status = Status.FAILED
    target.reason = f"{reason}; {'update paused' if halt == 'pause' else 'failed'}"
    target.finished_at = now
    target.save()
    live.broadcast("deployment", target.pk)
    live.broadcast("service", service.name)
    Event.objects.record(
        EventKind.DEPLOYMENT_FAILED,
        service=service,
        old=f"revision {target.revision}",
        reason=target.reason,
    )
    return True


def succeed(service: Service, deployment: Deployment, reason: str, now: datetime) -> bool:
    """Every slot runs a proven replica of the revision. A reason left over from the way
    there (a placement that could not be met for a while) no longer holds, so it goes."""
    updated = Deployment.objects.filter(pk=deployment.pk, status=Status.RUNNING).update(
        status=Status.SUCCEEDED, progress=100, finished_at=now, reason=""
    )
    if updated:
        live.broadcast("deployment", deployment.pk)
        live.broadcast("service", service.name)
        Event.objects.record(
            EventKind.DEPLOYMENT_SUCCEEDED,
            service=service,
            new=f"revision {deployment.revision}",
            reason=reason,
        )
    return bool(updated)


def progress(deployment: Deployment, percent: int) -> None:
    """How far the rollout is, shown when it moved."""
    moved = Deployment.objects.filter(pk=deployment.pk).exclude(progress=percent)
    if moved.update(progress=percent):
        live.broadcast("deployment", deployment.pk)


def report_placement(service: Service, deployment: Deployment, reason: str) -> None:
    """A plan that cannot be met: say so once on the deployment and as an Event, together."""
    with transaction.atomic():
        updated = (
            Deployment.objects.filter(pk=deployment.pk).exclude(reason=reason).update(reason=reason)
        )
        if updated:
            live.broadcast("deployment", deployment.pk)
            Event.objects.record(EventKind.PLACEMENT_FAILED, service=service, reason=reason)
