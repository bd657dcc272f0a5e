"""Celery tasks of the replay app: thin, they take ids and call replay.engine."""

from celery import shared_task

from replay import engine


@shared_task(name="replay.run")
def run_replay(job_id):
    job = engine.run_job(job_id)
    return None if job is None else job.status
