"""Attune's top layer: studies in motion. Also home of the Django project (settings, urls, Celery app)."""

from annotate.celery import app as celery_app

__all__ = ["celery_app"]
