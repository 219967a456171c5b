"""Fleet: a live dashboard for container fleets."""

from .celery import app as celery_app

__all__ = ["celery_app"]
