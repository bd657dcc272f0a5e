"""Settled flows, read in (started_at, id) order from a stored position.

A flow is settled once nothing more can change what Warren reports of it:
`settle_s` after its request (at least WARREN_RPC_TIMEOUT, so a call without
reply is already a timeout), plus however far indexing is behind capture now,
so a flow still waiting in the capture spool is not passed by. Orphans (a reply
without request) and backlog flows (times measured after the fact) are not
calls with real times and are never read.

Each reader (`metrics`, `otlp`) claims its FlowFeed row first — a write, so on
PostgreSQL a row lock and on SQLite the database's write lock — then reads,
does its work and moves the position in the same transaction: two Warren
processes never count or export the same flow twice, and a restart resumes
exactly where the last commit left off.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tracer.export.models import FlowFeed
from tracer.models import Flow
from tracer.store import pairing
from tracer.store.status import alive_sessions

BATCH = 2000


def indexing_behind_s() -> float:
    """How far the running taps' indexing is behind the broker (s), 0 with none."""
    behind = [s.index_lag_s + s.lag_ms / 1000.0 for s in alive_sessions()]
    return max(behind, default=0.0)


def horizon(settle_s: float, now: datetime | None = None) -> datetime:
    """Flows requested up to this time are settled."""
    now = now or timezone.now()
    return now - timedelta(seconds=settle_s + indexing_behind_s())


@contextmanager
def claimed(name: str) -> Iterator[FlowFeed]:
    """The reader's FlowFeed row, held (locked) for one transaction."""
    with transaction.atomic():
        FlowFeed.objects.get_or_create(name=name)
        # An update first: the row (and on SQLite the database) is ours until commit.
        FlowFeed.objects.filter(name=name).update(updated_at=timezone.now())
        yield FlowFeed.objects.get(name=name)


def settled_after(feed: FlowFeed, until: datetime, limit: int = BATCH) -> list[Flow]:
    """The next settled flows after the feed's position, oldest first."""
    flows = Flow.objects.filter(started_at__lte=until, backlog=False).exclude(status=pairing.ORPHAN)
    if feed.after_started_at is not None:
        flows = flows.filter(
            Q(started_at__gt=feed.after_started_at)
            | Q(started_at=feed.after_started_at, id__gt=feed.after_id)
        )
    return list(flows.order_by("started_at", "id")[:limit])


def advance(feed: FlowFeed, flows: list[Flow], done: int, lost: int = 0) -> None:
    """Moves the position past `flows` (inside the claiming transaction)."""
    if flows:
        feed.after_started_at, feed.after_id = flows[-1].started_at, flows[-1].id
    feed.done += done
    feed.lost += lost
    feed.updated_at = timezone.now()
    feed.save()


def timed_out(flow: Flow) -> bool:
    """A settled flow without a reply in time: a timeout, a late reply, or one the
    timeout sweep has not marked yet (it is past WARREN_RPC_TIMEOUT)."""
    return flow.status in (pairing.TIMEOUT, pairing.PENDING) or flow.late
