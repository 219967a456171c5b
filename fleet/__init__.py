"""Fleet: a live dashboard for container fleets."""

from fleet.celery import app as celery_app

__all__ = ["celery_app"]
