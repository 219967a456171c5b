"""Celery tasks: thin wrappers that load by id and call one domain function."""

from celery import shared_task

from fleet.alerts import delivery, incidents
from fleet.converge import reconcile
from fleet.converge.runner import TASK_SOFT_LIMIT, converge
from fleet.metrics import store, thresholds
from fleet.nodes import health
from fleet.services import image_updates


@shared_task
def check_nodes():
    """Probe every node (beat runs this every FLEET_NODE_CHECK_INTERVAL seconds)."""
    health.check_all_nodes()


@shared_task
def check_node(node_id):
    """Probe one node now, e.g. right after it was registered."""
    health.check_node(node_id)


@shared_task(soft_time_limit=TASK_SOFT_LIMIT, time_limit=TASK_SOFT_LIMIT + 60)
def converge_service(service_id):
    """Bring one service to its desired state (deploy, scale, roll back, heal)."""
    return converge(service_id)


@shared_task
def run_reconcile():
    """The safety net (beat runs this every FLEET_RECONCILE_INTERVAL seconds)."""
    reconcile.run()


@shared_task(soft_time_limit=60, time_limit=90)
def process_alerts():
    """New events to incidents and alerts (beat runs this every FLEET_ALERT_INTERVAL s)."""
    incidents.process_events()


@shared_task(soft_time_limit=60, time_limit=90)
def check_alert_conditions():
    """Degraded services, ended crash loops, quiet periods (every FLEET_ALERT_CHECK_INTERVAL)."""
    incidents.check_conditions()


@shared_task(soft_time_limit=60, time_limit=90)
def deliver_alert(alert_id, channel_id, attempt=1):
    """Send one alert to one channel, one attempt (retries are queued by the attempt)."""
    delivery.deliver(alert_id, channel_id, attempt)


@shared_task(soft_time_limit=60, time_limit=90)
def sweep_alert_deliveries():
    """Queue the deliveries owed whose time has come (every FLEET_ALERT_INTERVAL s)."""
    delivery.sweep()


@shared_task
def roll_up_metrics():
    """Roll raw samples up into 5-minute buckets and prune old ones (beat: every minute)."""
    store.roll_up()


@shared_task
def check_metric_thresholds():
    """Record thresholds that began or stopped holding (beat: every 30 s)."""
    thresholds.check_all()


# Each call of a check has its own timeout; a fleet of many tags whose registries all hang
# takes rounds of them (fleet.services.image_updates._run).
@shared_task(soft_time_limit=600, time_limit=660)
def check_images():
    """Ask the registries about every service's image tag (every FLEET_IMAGE_CHECK_INTERVAL)."""
    image_updates.check_all()


@shared_task(soft_time_limit=60, time_limit=90)
def check_image(service_id):
    """Ask the registry about one service's image tag now, as someone asked."""
    image_updates.check(service_id)
