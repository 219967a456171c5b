"""The one door to background work: every Celery task Fleet queues goes through here.

A job is queued once the transaction that asked for it commits, so a change
that rolled back never starts work (outside a transaction it is queued at once).
Tasks are named, not imported: the domain never imports fleet.tasks.

One policy for a broker that is away: the request is logged and dropped, never
raised into the change that asked for it. Nothing is lost by that, since the
database holds every desired state: beat's next node check and reconcile, a few
seconds later, find the same work and queue it again; an alert's deliveries are
rows (PendingDelivery) that the alerts' sweep hands over until one is taken.

Alert work (processing, checks, deliveries, the sweep) goes to a queue of its own,
"alerts", which a worker of its own consumes (settings_features.ALERT_ROUTES; the
Procfile's `alerts` process), so a backlog of converges never holds an alert back.
"""

import logging

from celery import current_app
from django.db import transaction
from kombu.exceptions import OperationalError

from fleet.converge import wake
from fleet.models import Replica

log = logging.getLogger(__name__)

CONVERGE_SERVICE = "fleet.tasks.converge_service"
CHECK_NODE = "fleet.tasks.check_node"
RECONCILE = "fleet.tasks.run_reconcile"


def send(task, *args, countdown=None):
    """Queue `task` with `args` now (to run `countdown` seconds on); return whether the
    broker took it (an outage is logged, not raised)."""
    try:
        current_app.send_task(task, args=args, countdown=countdown)
    except OperationalError as exc:
        log.warning(
            "could not queue %s%r (%s); it is found and queued again later", task, args, exc
        )
        return False
    return True


def on_commit(task, *args, countdown=None):
    """Queue `task` with `args` once the current transaction commits."""
    transaction.on_commit(lambda: send(task, *args, countdown=countdown))


def converge(service_id):
    """Bring a service to its desired state (deploy, scale, roll back, heal, delete)."""
    on_commit(CONVERGE_SERVICE, service_id)
    transaction.on_commit(lambda: wake.nudge(service_id))  # a converge under way looks now


def check_node(node_id, after=None):
    """Probe a node now (or `after` seconds from now) rather than at beat's next tick."""
    on_commit(CHECK_NODE, node_id, countdown=after)


def move_off(node_id):
    """Converge every service that has replicas on a node that went down or was drained.

    The services are found and their converges queued here, once the change commits,
    rather than by a task of their own: one hop through the broker less between a node
    marked down and its replicas starting elsewhere."""

    def converge_each():
        ids = Replica.objects.filter(node_id=node_id).values_list("service_id", flat=True)
        for service_id in sorted(set(ids)):
            converge(service_id)  # committed already: queued and nudged at once

    transaction.on_commit(converge_each)


def reconcile():
    """Run the safety net now (e.g. a node came back with stale containers)."""
    on_commit(RECONCILE)


DELIVER_ALERT = "fleet.tasks.deliver_alert"


def deliver_now(alert_id: int, channel_id: int, attempt: int) -> bool:
    """Queue one attempt to send one alert to one channel now, outside any transaction's
    wait (the caller holds its PendingDelivery row); return whether the broker took it."""
    return send(DELIVER_ALERT, alert_id, channel_id, attempt)


CHECK_IMAGE = "fleet.tasks.check_image"


def check_image(service_id):
    """Ask the registry whether the service's image tag has a newer digest."""
    on_commit(CHECK_IMAGE, service_id)
