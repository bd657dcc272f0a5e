"""Celery tasks of the tracer: thin, the work is in plain functions."""

from celery import shared_task

from tracer.store import retention


@shared_task(name="tracer.prune")
def prune_captured():
    """Retention (WARREN_RETENTION): run by Celery beat, see CELERY_BEAT_SCHEDULE."""
    return retention.prune()
