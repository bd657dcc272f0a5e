"""Replay workers and their heartbeats: which job's worker is gone.

A running job's row carries its worker (host:pid) and a heartbeat. Whoever
looks at a job next (a page, the API) calls `notice_interrupted`, which marks
a job whose worker went silent as interrupted, with exact counts, so it can
be resumed (replay.jobs.resume_job).
"""

import os
import socket
from datetime import timedelta

from django.utils import timezone

from replay.models import ReplayJob

# No heartbeat for this long: the worker is gone. Longer than a publish may block
# while the broker throttles publishers (blocked_connection_timeout, 30 s).
STALE_AFTER_S = 45.0
DEAD_PID_GRACE_S = 2.0  # same host, process gone: no need to wait for STALE_AFTER_S
MAX_JOB_ERRORS = 20


def worker_name():
    return f"{socket.gethostname()}:{os.getpid()}"


def notice_interrupted(jobs=None, now=None):
    """Marks running jobs whose worker is gone as interrupted, with exact counts.

    Gone: no heartbeat for STALE_AFTER_S, or (same host) the worker process no
    longer exists. Returns how many were marked.
    """
    now = now or timezone.now()
    jobs = ReplayJob.objects.all() if jobs is None else jobs
    marked = 0
    for job in jobs.filter(status=ReplayJob.RUNNING):
        beat = job.heartbeat_at or job.started_at or job.created_at
        silent = (now - beat).total_seconds()
        if silent < STALE_AFTER_S and not (silent > DEAD_PID_GRACE_S and _process_gone(job.worker)):
            continue
        counts = job.counts_from_items()
        words = (
            f"the worker ({job.worker or 'unknown'}) stopped at {beat:%H:%M:%S} UTC: "
            f"{counts['confirmed']:,} confirmed, {counts['failed']:,} failed, "
            f"{job.total - counts['confirmed'] - counts['failed'] - counts['in_flight']:,} not sent"
        )
        if counts["in_flight"]:
            words += (
                f"; {counts['in_flight']} was in flight — published, never confirmed: it may or "
                "may not have arrived"
            )
        updated = ReplayJob.objects.filter(
            id=job.id, status=ReplayJob.RUNNING, heartbeat_at=job.heartbeat_at
        ).update(
            status=ReplayJob.INTERRUPTED,
            finished_at=now,
            sent=counts["sent"],
            confirmed=counts["confirmed"],
            failed=counts["failed"],
            errors=(job.errors + [words])[-MAX_JOB_ERRORS:],
            report={**job.report, "in_flight": counts["in_flight"]},
        )
        marked += updated
    return marked


def _process_gone(worker):
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def stale_before():
    return timezone.now() - timedelta(seconds=STALE_AFTER_S)
