"""Celery tasks: thin wrappers that load by id and call one domain function."""

from celery import shared_task

from . import health


@shared_task
def check_nodes():
    """Probe every node (beat runs this every FLEET_NODE_CHECK_INTERVAL seconds)."""
    health.check_all_nodes()


@shared_task
def check_node(node_id):
    """Probe one node now, e.g. right after it was registered."""
    health.check_node(node_id)
