"""Image updates: whether the registry now has another digest for the tag a service runs.

Beat checks every service every FLEET_IMAGE_CHECK_INTERVAL; people ask for one
service at once (request_check, queued). A check asks each tag's registry through
a ready node's engine and reads what the service's running containers were made
from on the nodes (their images' repository digests), all calls at once, each
given FLEET_IMAGE_CHECK_TIMEOUT, so one silent registry or node delays nothing
else. A newer digest is recorded on the service's ImageCheck row with when it
was first seen, announced once (an Event, which alerts read), and deployed by
deploy_update(): the spec's image pinned to that digest (`repo:tag@sha256:...`),
so every node pulls exactly it, through the normal health-gated rollout. With
`update.auto` the check deploys it itself, once per digest.
"""

import logging
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fleet import live, queue, services
from fleet.engine import registry as engine_registry
from fleet.engine import trust as engine_trust
from fleet.engine.errors import EngineError
from fleet.models import Actor, Event, EventKind, ImageCheck, Node, Replica, Service
from fleet.models.threads import close_thread_connections
from fleet.services import registries

log = logging.getLogger(__name__)

# Who acts when a check announces or deploys an update by itself.
CHECK = Actor(name="image-check", via="system")
THREADS = 16  # registry and node calls in flight at once
Outcome = ImageCheck.Outcome


# Pure rules -------------------------------------------------------------------------


def split(image):
    """(the tag to check, the digest pinned) of an image reference; the tag is "" when the
    reference names a digest only, and ":latest" is spelt out when it names neither."""
    name, _, digest = image.partition("@")
    if ":" in name.rsplit("/", 1)[-1]:
        return name, digest
    return ("" if digest else f"{name}:latest"), digest


def pin(tagged, digest):
    """The reference that runs exactly `digest` and still says which tag it came from."""
    return f"{tagged}@{digest}"


def short(digest):
    """A digest as people read it: sha256: and its first 12 hex digits."""
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest


def compare(registry_digest, running):
    """The outcome for a registry digest and the digests of each image running (a list of
    lists: an image pushed to several repositories has several); unknown with none."""
    if not running:
        return Outcome.UNKNOWN
    if all(registry_digest in digests for digests in running):
        return Outcome.UP_TO_DATE
    return Outcome.UPDATE_AVAILABLE


def offered(update_digest, pinned_digest):
    """The update on offer: the newer digest, unless the spec already pins it (deployed,
    and no later check has looked since)."""
    return update_digest if update_digest and update_digest != pinned_digest else ""


def should_announce(update_digest, announced_digest):
    """An update is announced (an Event, so an alert) once per digest."""
    return bool(update_digest) and update_digest != announced_digest


def should_auto_deploy(auto, offer, auto_deployed_digest, status):
    """Whether a check deploys the offer itself: asked for by the spec, once per digest (a
    rollout of it that failed is not tried again), and never over a rollout or deletion."""
    return (
        bool(auto and offer)
        and offer != auto_deployed_digest
        and status
        not in (
            "deploying",
            "deleting",
        )
    )


# What people see --------------------------------------------------------------------


@dataclass(frozen=True)
class ImageStatus:
    """A service's image check as pages and the API show it."""

    image: str  # the tag checked
    outcome: str  # "" when it was never checked (or not since the tag changed)
    error: str
    checked_at: object
    requested_at: object
    registry_digest: str
    running_digests: list
    update_digest: str  # the update on offer, "" when there is none
    update_seen_at: object
    auto: bool

    @property
    def update_available(self):
        return bool(self.update_digest)

    @property
    def update_short(self):
        return short(self.update_digest)


def status_of(service):
    """What is known of a service's image and its updates (reads the row with_counts()
    joins when it is there)."""
    try:
        check = service.image_check
    except ImageCheck.DoesNotExist:
        check = ImageCheck(service=service)
    tagged, pinned = split(service.spec.get("image", ""))
    auto = bool(service.spec.get("update", {}).get("auto", False))
    if check.image != tagged:  # never checked, or the spec names another tag since
        check = ImageCheck(service=service, image=tagged, requested_at=check.requested_at)
    offer = offered(check.update_digest, pinned)
    return ImageStatus(
        image=tagged,
        outcome=check.outcome,
        error=check.error,
        checked_at=check.checked_at,
        requested_at=check.requested_at,
        registry_digest=check.registry_digest,
        running_digests=list(check.running_digests),
        update_digest=offer,
        update_seen_at=check.update_seen_at if offer else None,
        auto=auto,
    )


# What people do ---------------------------------------------------------------------


@transaction.atomic
def request_check(service):
    """Check one service's image now (queued; the outcome is shown when it is done)."""
    if service.deleting:
        raise services.ServiceError(f"Service {service.name} is being deleted.")
    now = timezone.now()
    ImageCheck.objects.get_or_create(service=service)
    ImageCheck.objects.filter(pk=service.pk).update(requested_at=now)
    live.broadcast("service", service.name)
    queue.check_image(service.pk)


def update_of(service):
    """The digest a deploy_update() of the service would deploy now, or ""."""
    service = Service.objects.select_related("current_deployment", "image_check").get(pk=service.pk)
    return status_of(service).update_digest


def deploy_update(service, actor, digest=None):
    """Deploy the newer digest a check found: the spec's image pinned to it, rolled out
    like any deploy. `digest` (optional) must be the one on offer. Returns what
    services.deploy() does; ServiceError when there is nothing (or something else) to deploy."""
    offer = update_of(service)
    if not offer:
        raise services.ServiceError(
            f"No image update is available for {service.name}: check its image first."
        )
    if digest and digest != offer:
        raise services.ServiceError(
            f"The update on offer for {service.name} is {offer}, not {digest}: check again."
        )
    tagged, _ = split(service.spec["image"])
    return services.deploy_changes(service, {"image": pin(tagged, offer)}, actor)


# The check --------------------------------------------------------------------------


@dataclass
class Look:
    """What one check found for one service."""

    tagged: str
    pinned: str
    running: list = field(default_factory=list)  # each running image's digests
    registry: str = ""
    error: str = ""
    notes: list = field(default_factory=list)


def check_all():
    """Check every service (beat runs this every FLEET_IMAGE_CHECK_INTERVAL)."""
    rows = Service.objects.filter(deleting=False, current_deployment__isnull=False)
    _check(list(rows.select_related("current_deployment")), single=False)


def check(service_id):
    """Check one service now (someone asked)."""
    rows = Service.objects.filter(pk=service_id, deleting=False, current_deployment__isnull=False)
    _check(list(rows.select_related("current_deployment")), single=True)


def _check(rows, single):
    if not rows:
        return
    looks = {service.pk: Look(*split(service.spec["image"])) for service in rows}
    ready = {n.pk: n for n in Node.objects.filter(status=Node.Status.READY).order_by("name")}
    hosts = {}  # service id -> ids of ready nodes that run a replica of it
    running = Replica.objects.filter(
        service__in=rows, state=Replica.State.RUNNING, node__in=list(ready)
    )
    for service_id, node_id in running.values_list("service_id", "node_id").distinct():
        hosts.setdefault(service_id, set()).add(node_id)
    timeout = settings.FLEET_IMAGE_CHECK_TIMEOUT
    calls = {}
    for service in rows:
        look = looks[service.pk]
        if not look.tagged:
            continue
        asker = _asker(hosts.get(service.pk), ready)
        if asker is not None:
            login, trusted = registries.auth_for(look.tagged), registries.trust_for(look.tagged)
            call = (asker, look.tagged, timeout, login, trusted)
            calls.setdefault(("registry", look.tagged), call)
    unpinned = [s for s in rows if looks[s.pk].tagged and not looks[s.pk].pinned]
    name = rows[0].name if single else None
    for node_id in set().union(*[hosts.get(s.pk, set()) for s in unpinned]):
        calls[("node", node_id)] = (ready[node_id], timeout, name)
    found = _run(calls, timeout)
    for service in rows:
        _fill(looks[service.pk], service, found, hosts.get(service.pk, set()), ready)
        _record(service, looks[service.pk])


def _asker(hosting, ready):
    """The node to ask the registry through: one that runs the service (it pulled from
    that registry before), else the first ready one."""
    for node_id in ready:
        if node_id in (hosting or ()):
            return ready[node_id]
    return next(iter(ready.values()), None)


def _registry_digest(node, image, timeout, login, trusted):
    if trusted:  # (server, CA): the engine asks the registry over TLS of that CA
        engine_trust.ensure_ca(node, *trusted)
    return engine_registry.registry_digest(node, image, timeout, login)


def _run(calls, timeout):
    """Every call at once: {key: result, or the exception it raised}. A call not done by
    the deadline is left to finish on its own (each has its timeout)."""
    if not calls:
        return {}
    pool = ThreadPoolExecutor(max_workers=min(len(calls), THREADS))
    call = {
        "registry": close_thread_connections(_registry_digest),
        "node": close_thread_connections(engine_registry.running_digests),
    }
    futures = {pool.submit(call[key[0]], *args): key for key, args in calls.items()}
    rounds = -(-len(calls) // THREADS)
    # A node's look is one listing and one inspection per image, a registry's answer may
    # take a ping after it: three timeouts a round is ample.
    done, _ = wait(futures, timeout=3 * timeout * rounds + settings.FLEET_NODE_PING_TIMEOUT)
    pool.shutdown(wait=False)
    found = {}
    for future, key in futures.items():
        if future in done:
            found[key] = future.exception() or future.result()
        else:
            found[key] = EngineError(f"no answer within {3 * timeout:g} s")
    return found


def _fill(look, service, found, hosting, ready):
    """Put what the calls found for one service into its Look."""
    if not look.tagged:
        look.error = f"{service.spec['image']} names a digest, not a tag: there is nothing to check"
        return
    answer = found.get(("registry", look.tagged))
    if answer is None:
        look.error = "no node is ready to ask the registry through"
        return
    if isinstance(answer, Exception):
        look.error = str(answer)
        return
    look.registry = answer
    if look.pinned:
        look.running = [[look.pinned]]
        return
    for node_id in sorted(hosting, key=lambda pk: ready[pk].name):
        seen = found.get(("node", node_id))
        if isinstance(seen, Exception):
            look.notes.append(f"{ready[node_id].name} did not say what it runs: {seen}")
        elif seen:
            look.running += [d for d in seen.get(service.name, {}).values() if d]
    if not look.running:
        look.notes.append("no running replica shows a registry digest to compare with")


@transaction.atomic
def _record(service, look):
    """Store what a check found, announce a new digest once, and deploy it when the spec
    says `update.auto`."""
    now = timezone.now()
    ImageCheck.objects.get_or_create(service=service)
    check = ImageCheck.objects.select_for_update().get(pk=service.pk)
    if check.image != look.tagged:
        # Another tag than last time: what was found for the old one says nothing of it.
        check.image, check.update_digest, check.update_seen_at = look.tagged, "", None
        check.announced_digest = check.auto_deployed_digest = ""
    check.checked_at, check.requested_at = now, None
    if look.error:
        check.outcome, check.error = Outcome.FAILED, look.error[:2000]
    else:
        check.outcome = compare(look.registry, look.running)
        check.error = "; ".join(look.notes)[:2000]
        check.registry_digest = look.registry
        check.running_digests = sorted({d for digests in look.running for d in digests})
        if check.outcome == Outcome.UPDATE_AVAILABLE and check.update_digest != look.registry:
            check.update_digest, check.update_seen_at = look.registry, now
        elif check.outcome == Outcome.UP_TO_DATE:
            check.update_digest, check.update_seen_at = "", None
    if should_announce(check.update_digest, check.announced_digest):
        check.announced_digest = check.update_digest
        Event.objects.record(
            EventKind.SERVICE_IMAGE_UPDATE_AVAILABLE,
            actor=CHECK,
            service=service,
            old=", ".join(short(d) for d in check.running_digests)[:255],
            new=short(check.update_digest),
            reason=f"{look.tagged} now points at {check.update_digest}",
        )
    offer = offered(check.update_digest, look.pinned)
    auto = service.spec.get("update", {}).get("auto", False)
    deploy = should_auto_deploy(auto, offer, check.auto_deployed_digest, service.status)
    if deploy:
        check.auto_deployed_digest = offer
    check.save()
    live.broadcast("service", service.name)
    if deploy:
        try:
            deploy_update(service, CHECK, offer)
        except services.ServiceError as exc:
            ImageCheck.objects.filter(pk=service.pk).update(error=f"not deployed: {exc}"[:2000])
            log.info("image update of %s not deployed: %s", service.name, exc)
