"""What people do to services: create, deploy, scale, roll back and delete.

The API, the admin and the dashboard all call these. Each changes desired state
in one transaction, writes its Event, and queues a converge on commit; the
worker does the Docker work.
"""

from typing import Any

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from fleet import live, queue
from fleet.converge import transitions
from fleet.models import SYSTEM, Actor, Deployment, Event, EventKind, Service
from fleet.services.spec import SPEC_FIELDS, ServiceSpecSerializer, comparable, merge


class ServiceError(Exception):
    """A request that cannot be carried out as things stand; the message says why."""


class StaleSpec(ServiceError):
    """A spec edited from a revision that is no longer the current one."""


def _queue_converge(service: Service) -> None:
    live.broadcast("service", service.name)
    queue.converge(service.pk)


def _locked(service: Service) -> Service:
    # Lock the service row only: PostgreSQL refuses FOR UPDATE on the outer join.
    rows = Service.objects.select_for_update(of=("self",)).select_related("current_deployment")
    locked = rows.get(pk=service.pk)
    if locked.deleting:
        raise ServiceError(f"Service {locked.name} is being deleted.")
    return locked


def describe_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """A short account of what a new revision changes, for its Event (names, never values)."""
    old, new = comparable(old), comparable(new)
    changed = [key for key in SPEC_FIELDS if old.get(key) != new.get(key)]
    if changed == ["image"]:
        return f"image {old['image']} -> {new['image']}"
    return "changed " + ", ".join(changed) if changed else "no change"


@transaction.atomic
def create(data: dict[str, Any], actor: Actor = SYSTEM) -> Service:
    """Create a service from a validated spec and deploy its revision 1."""
    service = Service.objects.create(name=data["name"], replicas=data["replicas"])
    deployment = Deployment.objects.create(
        service=service,
        revision=1,
        spec={key: data[key] for key in SPEC_FIELDS},
        actor=actor.name,
        via=actor.via,
    )
    service.current_deployment = deployment
    service.save(update_fields=["current_deployment", "updated_at"])
    live.broadcast("deployment", deployment.pk)
    Event.objects.record(
        EventKind.SERVICE_CREATED,
        actor=actor,
        service=service,
        new=data["image"],
        reason=f"{data['replicas']} replica(s)",
    )
    _queue_converge(service)
    return service


@transaction.atomic
def deploy(
    service: Service,
    spec: dict[str, Any],
    actor: Actor = SYSTEM,
    force: bool = False,
    base_revision: int | None = None,
) -> tuple[Deployment, bool]:
    """Make a validated spec the next revision; return (deployment, whether it is new).

    An unchanged spec makes no revision, unless `force` asks for one: then every
    replica is replaced, by the rolling update, with a fresh container.
    `base_revision` is the revision a whole spec was edited from: when another one
    has become current since, the deploy is refused (StaleSpec) rather than undo it.
    """
    service = _locked(service)
    current = service.current_deployment
    if base_revision is not None and current is not None and current.revision != base_revision:
        raise StaleSpec(
            f"{service.name} is at revision {current.revision} now, not {base_revision} as "
            "when this spec was loaded: load it again and repeat the change."
        )
    spec = {key: spec[key] for key in SPEC_FIELDS}
    if current is not None and comparable(current.spec) == comparable(spec) and not force:
        return current, False
    if current is not None and not current.finished:
        current.status = Deployment.Status.FAILED
        current.reason = "superseded by a newer revision before it finished"
        current.superseded = True
        current.finished_at = timezone.now()
        current.save()
    revision = (service.deployments.aggregate(top=Max("revision"))["top"] or 0) + 1
    deployment = Deployment.objects.create(
        service=service, revision=revision, spec=spec, actor=actor.name, via=actor.via
    )
    Service.objects.filter(pk=service.pk).update(
        current_deployment=deployment, generation=F("generation") + 1
    )
    live.broadcast("deployment", deployment.pk)
    if current is not None:
        live.broadcast("deployment", current.pk)
    Event.objects.record(
        EventKind.DEPLOYMENT_CREATED,
        actor=actor,
        service=service,
        old=f"revision {current.revision}" if current else "",
        new=f"revision {revision}",
        reason="redeploy" if force else describe_changes(current.spec if current else {}, spec),
    )
    _queue_converge(service)
    return deployment, True


@transaction.atomic
def deploy_changes(
    service: Service, changes: dict[str, Any], actor: Actor = SYSTEM, force: bool = False
) -> tuple[Deployment, bool]:
    """Deploy the current spec with a client's partial changes; return what deploy() does.

    The changes are merged into the spec as it is under the row lock, not as it was
    when the request came in, so two deploys at once each keep what the other changed
    (a secret rotated meanwhile never comes back).
    """
    service = _locked(service)
    merged = merge(service.spec, changes) | {"name": service.name, "replicas": service.replicas}
    spec = ServiceSpecSerializer(data=merged)
    if not spec.is_valid():
        problems = "; ".join(_error_lines(spec.errors))
        raise ServiceError(f"The changes do not fit the spec as it is now: {problems}")
    return deploy(service, spec.validated_data, actor, force)


def _error_lines(errors: dict[str, Any] | list[Any], prefix: str = "") -> list[str]:
    """A serializer's nested errors as lines such as "update.order: not a valid choice"."""
    if isinstance(errors, dict):
        return [line for k, v in errors.items() for line in _error_lines(v, f"{prefix}{k}.")]
    return [f"{prefix.rstrip('.')}: {' '.join(map(str, errors))}"]


@transaction.atomic
def scale(service: Service, replicas: int, actor: Actor = SYSTEM) -> Service:
    """Set the desired replica count; the latest request wins."""
    service = _locked(service)
    old = service.replicas
    if old != replicas:
        Service.objects.filter(pk=service.pk).update(
            replicas=replicas, generation=F("generation") + 1
        )
        Event.objects.record(
            EventKind.SERVICE_SCALED, actor=actor, service=service, old=str(old), new=str(replicas)
        )
    _queue_converge(service)
    return Service.objects.get(pk=service.pk)


@transaction.atomic
def rollback(service: Service, actor: Actor = SYSTEM) -> Deployment:
    """Go back to the newest earlier revision that succeeded; return that deployment."""
    service = _locked(service)
    current = Deployment.objects.select_for_update().get(pk=service.current_deployment_id)
    good = Deployment.objects.rollback_target(service, current)
    if good is None:
        raise ServiceError("There is no earlier revision that succeeded to roll back to.")
    reason = f"rolled back by {actor.name} to revision {good.revision}"
    transitions.roll_back(service, current, good, reason, actor)
    _queue_converge(service)
    return good


@transaction.atomic
def restart_replica(service: Service, slot: int, actor: Actor = SYSTEM) -> None:
    """Replace one replica's container with a fresh one, now."""
    service = _locked(service)
    rows = service.replica_set.filter(slot=slot)
    if not rows.exists():
        raise ServiceError(f"Slot {slot} of {service.name} has no replica.")
    rows.update(restart_requested=True)
    # A converge that holds the lease now must look again before it calls itself done.
    Service.objects.filter(pk=service.pk).update(generation=F("generation") + 1)
    Event.objects.record(
        EventKind.REPLICA_RESTART_REQUESTED, actor=actor, service=service, reason=f"slot {slot}"
    )
    _queue_converge(service)


@transaction.atomic
def delete(service: Service, actor: Actor = SYSTEM) -> None:
    """Mark a service for deletion; the worker removes its containers, then the service."""
    service = _locked(service)
    Service.objects.filter(pk=service.pk).update(deleting=True, generation=F("generation") + 1)
    Event.objects.record(EventKind.SERVICE_DELETED, actor=actor, service=service)
    _queue_converge(service)
