"""What the tap is doing, as /api/health and /api/tap/status tell it.

Each tap process writes its counters to its TapSession row at least once a
second; a session is running while its heartbeat is fresh. Counters are summed
over the running taps (several may share one tap queue); with none running,
the last session's are shown.
"""

from datetime import timedelta

from django.db import DatabaseError
from django.utils import timezone

from rabbit import cluster
from tracer.models import TapGap, TapSession
from tracer.times import iso

ALIVE = timedelta(seconds=10)
RECENT_GAPS = 10
COUNTERS = (
    "received",
    "stored",
    "duplicates",
    "backlog",
    "dropped",
    "queue_depth",
    "spool_bytes",
    "spool_frames",
)


def _sessions():
    now = timezone.now()
    recent = list(TapSession.objects.order_by("-heartbeat_at")[:50])
    alive = [s for s in recent if s.ended_at is None and now - s.heartbeat_at <= ALIVE]
    return alive, recent


def alive_sessions() -> list[TapSession]:
    """The taps running now: not ended, and a heartbeat within ALIVE."""
    return _sessions()[0]


def gap_json(gap):
    return {
        "vhost": gap.vhost,
        "started_at": iso(gap.started_at),
        "ended_at": iso(gap.ended_at),
        "dropped": gap.dropped,
        "reason": gap.reason,
        "text": str(gap),
    }


def tap_status(tracing=True):
    """The /api/tap/status document (docs/architecture.md, JSON API), with a few more figures.

    With `tracing`, also each traced vhost's tracing per node as the broker
    tells it now ("on", "off", "unreachable"; rabbit.cluster), and why it
    cannot tell ("" when it can).
    """
    try:
        alive, recent = _sessions()
        gaps = [gap_json(gap) for gap in TapGap.objects.order_by("-started_at")[:RECENT_GAPS]]
    except DatabaseError as error:
        return {"running": False, "error": f"the database cannot be read: {error}"}
    shown = alive or recent[:1]
    status = {"running": bool(alive), "taps": len(alive)}
    vhosts, connected, problems = set(), {}, []
    for session in shown:
        vhosts.update(session.vhosts or ())
        connected.update(session.connected or {})
        problems.extend(session.problems or ())
    status["vhosts"] = sorted(vhosts)
    for name in COUNTERS:
        status[name] = sum(getattr(session, name) for session in shown)
    last = [s.last_event_at for s in recent if s.last_event_at is not None]
    status["last_event_at"] = iso(max(last)) if last else None
    status["lag_ms"] = max((s.lag_ms for s in shown), default=0.0)
    # How far indexing is behind capture: the oldest spooled frame not yet stored.
    status["index_lag_s"] = max((s.index_lag_s for s in alive), default=0.0)
    # Paused while the machine is busy (tracer/tap/give_way.py); seconds paused in all.
    status["index_paused"] = any(s.index_paused for s in alive)
    status["index_paused_s"] = round(sum(s.index_paused_s for s in shown), 3)
    status["heartbeat_at"] = iso(max((s.heartbeat_at for s in shown), default=None))
    status["connected"] = connected
    status["problems"] = problems
    status["gaps"] = gaps
    if tracing:
        status["tracing"], status["tracing_problem"] = cluster.tracing_map(status["vhosts"])
    return status


def tap_health():
    status = tap_status(tracing=False)
    keys = (
        "running",
        "vhosts",
        "connected",
        "last_event_at",
        "lag_ms",
        "index_lag_s",
        "index_paused",
        "spool_bytes",
        "queue_depth",
        "dropped",
        "problems",
    )
    health = {key: status[key] for key in keys if key in status}
    if "error" in status:
        health["error"] = status["error"]
    return health
