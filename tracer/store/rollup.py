"""Flows and per-minute roll-ups as a batch writes them.

A flow's contribution to ServiceMinute and LatencyBucket is taken back and
given again whenever the flow changes, so the roll-ups always equal what a
recount of the stored flows would give (docs/architecture.md, Pairing: statistics).
A late reply counts as a timeout (and as late), never as a latency: one reply
that came minutes after the caller gave up must not move a service's percentiles.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from django.db.backends.utils import CursorWrapper

from tracer.models import Flow, LatencyBucket, ServiceMinute
from tracer.store import pairing, stats
from tracer.store.sql import (
    SqlParam,
    chunks,
    column,
    db_time,
    is_postgres,
    marks,
    quote,
    table_of,
    us_from_db,
)
from tracer.times import minute_us

FLOW_COLUMNS = (
    "vhost",
    "service",
    "correlation_id",
    "reply_to",
    "pairing",
    "status",
    "started_at",
    "requested_at",
    "request_delivered_at",
    "replied_at",
    "reply_delivered_at",
    "latency_ms",
    "queue_wait_ms",
    "service_ms",
    "end_to_end_ms",
    "request_id",
    "reply_id",
    "replies",
    "redeliveries",
    "late",
    "backlog",
)
FLOW_TIMES = {
    "started_at",
    "requested_at",
    "request_delivered_at",
    "replied_at",
    "reply_delivered_at",
}
# A stored flow as existing_flows reads it: {"id": ..., column: value}, times in
# microseconds, late and backlog as bools.
FlowRow: TypeAlias = dict[str, Any]
# (vhost, service, minute in microseconds): one ServiceMinute row.
MinuteKey: TypeAlias = tuple[str, str, int]
# (vhost, service, minute, bucket): one LatencyBucket row.
BucketKey: TypeAlias = tuple[str, str, int, int]
# What one flow adds to the roll-ups: its minute, timed out?, late?, its latency (if
# answered in time).
Contribution: TypeAlias = tuple[MinuteKey, bool, bool, float | None]

# --- flows and roll-ups ------------------------------------------------------------


def flow_row(flow: pairing.Flow) -> list[SqlParam]:
    values: list[SqlParam] = []
    for name in FLOW_COLUMNS:
        value = getattr(flow, name)
        values.append(db_time(value) if name in FLOW_TIMES else value)
    return values


def existing_flows(cursor: CursorWrapper, ids: Iterable[int]) -> dict[int, FlowRow]:
    existing: dict[int, FlowRow] = {}
    columns = ", ".join(column(name, name in FLOW_TIMES) for name in ("id", *FLOW_COLUMNS))
    names = ("id", *FLOW_COLUMNS)
    for chunk in chunks(ids):
        cursor.execute(
            f"SELECT {columns} FROM {table_of(Flow)} WHERE id IN ({marks(len(chunk))})",  # noqa: S608
            chunk,
        )
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            for name in FLOW_TIMES:
                row[name] = us_from_db(row[name])
            row["late"], row["backlog"] = bool(row["late"]), bool(row["backlog"])
            existing[row["id"]] = row
    return existing


def contribution(
    vhost: str,
    service: str,
    status: str,
    late: bool,
    backlog: bool,
    requested_us: int | None,
    latency_ms: float | None,
) -> Contribution | None:
    """What one flow adds to the per-minute roll-ups, or None."""
    if status == pairing.ORPHAN or backlog or not service or requested_us is None:
        return None
    late = bool(late)
    timed_out = status == pairing.TIMEOUT or late
    return (vhost, service, minute_us(requested_us)), timed_out, late, None if late else latency_ms


def flow_contribution(flow: pairing.Flow | FlowRow | None) -> Contribution | None:
    if flow is None:
        return None
    if isinstance(flow, dict):
        return contribution(
            flow["vhost"],
            flow["service"],
            flow["status"],
            flow["late"],
            flow["backlog"],
            flow["requested_at"],
            flow["latency_ms"],
        )
    return contribution(
        flow.vhost,
        flow.service,
        flow.status,
        flow.late,
        flow.backlog,
        flow.requested_at,
        flow.latency_ms,
    )


@dataclass(slots=True)
class MinuteCounts:
    """A ServiceMinute delta: the columns the upsert adds (the maximum: takes the larger)."""

    calls: int = 0
    timeouts: int = 0
    late: int = 0
    answered: int = 0
    latency_sum_ms: float = 0.0
    latency_max_ms: float = 0.0

    def values(self) -> tuple[int, int, int, int, float, float]:
        """In the order of the upsert's columns."""
        return (
            self.calls,
            self.timeouts,
            self.late,
            self.answered,
            self.latency_sum_ms,
            self.latency_max_ms,
        )


class RollUp:
    """Deltas for ServiceMinute and LatencyBucket, applied with one upsert each."""

    minutes: defaultdict[MinuteKey, MinuteCounts]
    buckets: Counter[BucketKey]

    def __init__(self) -> None:
        self.minutes = defaultdict(MinuteCounts)
        self.buckets = Counter()

    def add(self, part: Contribution | None, sign: int) -> None:
        if part is None:
            return
        key, timed_out, late, latency = part
        row = self.minutes[key]
        row.calls += sign
        row.timeouts += sign if timed_out else 0
        row.late += sign if late else 0
        if latency is not None:
            row.answered += sign
            row.latency_sum_ms += sign * latency
            if sign > 0:
                row.latency_max_ms = max(row.latency_max_ms, latency)
            self.buckets[(*key, stats.bucket_of(latency))] += sign

    def change(
        self, old: pairing.Flow | FlowRow | None, new: pairing.Flow | FlowRow | None
    ) -> None:
        before, after = flow_contribution(old), flow_contribution(new)
        if before != after:
            self.add(before, -1)
            self.add(after, +1)

    def write(self, cursor: CursorWrapper) -> None:
        greatest = "GREATEST" if is_postgres() else "MAX"
        minutes = []
        for (vhost, service, minute), row in self.minutes.items():
            values = row.values()
            if any(values):
                minutes.append((vhost, service, db_time(minute), *values))
        if minutes:
            table = table_of(ServiceMinute)
            cursor.executemany(
                f"INSERT INTO {table} (vhost, service, minute, calls, timeouts, late, "  # noqa: S608
                "answered, latency_sum_ms, latency_max_ms) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (vhost, service, minute) DO UPDATE SET "
                f"calls = {table}.calls + excluded.calls, "
                f"timeouts = {table}.timeouts + excluded.timeouts, "
                f"late = {table}.late + excluded.late, "
                f"answered = {table}.answered + excluded.answered, "
                f"latency_sum_ms = {table}.latency_sum_ms + excluded.latency_sum_ms, "
                f"latency_max_ms = {greatest}({table}.latency_max_ms, excluded.latency_max_ms)",
                minutes,
            )
        buckets = [
            (service, db_time(minute), vhost, bucket, count)
            for (vhost, service, minute, bucket), count in self.buckets.items()
            if count
        ]
        if buckets:
            table = table_of(LatencyBucket)
            cursor.executemany(
                f"INSERT INTO {table} (service, minute, vhost, bucket, count) "  # noqa: S608
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (service, minute, vhost, bucket) "
                f"DO UPDATE SET count = {table}.count + excluded.count",
                buckets,
            )


def write_flows(
    cursor: CursorWrapper, changes: pairing.Changes, rollup: RollUp
) -> tuple[list[pairing.Flow], set[int]]:
    """Insert, update and delete flows; returns (written flows, deleted ids)."""
    existing = existing_flows(cursor, set(changes.flows) | changes.delete_flow_ids)
    inserts: list[list[SqlParam]] = []
    written: list[pairing.Flow] = []
    # changed columns -> rows: one statement per shape
    updates: defaultdict[tuple[str, ...], list[list[SqlParam]]] = defaultdict(list)
    for flow_id, flow in changes.flows.items():
        old = existing.get(flow_id)
        if old is None:
            inserts.append([flow_id, *flow_row(flow)])
        else:
            changed = tuple(name for name in FLOW_COLUMNS if getattr(flow, name) != old[name])
            if not changed:
                continue
            values = [getattr(flow, name) for name in changed]
            values = [
                db_time(value) if name in FLOW_TIMES else value
                for name, value in zip(changed, values, strict=True)
            ]
            updates[changed].append([*values, flow_id])
        written.append(flow)
        rollup.change(old, flow)
    deleted = {flow_id for flow_id in changes.delete_flow_ids if flow_id in existing}
    for flow_id in deleted:
        rollup.change(existing[flow_id], None)
    table = table_of(Flow)
    columns = ", ".join(quote(name) for name in FLOW_COLUMNS)
    if inserts:
        marks = ", ".join(["%s"] * (len(FLOW_COLUMNS) + 1))
        # measured_behind starts false: tracer.store.resolution marks it after the batch.
        cursor.executemany(
            f"INSERT INTO {table} (id, {columns}, measured_behind) "  # noqa: S608
            f"VALUES ({marks}, %s)",
            [[*row, False] for row in inserts],
        )
    for changed, rows in updates.items():
        assignments = ", ".join(f"{quote(name)} = %s" for name in changed)
        cursor.executemany(
            f"UPDATE {table} SET {assignments} WHERE id = %s",  # noqa: S608
            rows,
        )
    for chunk in chunks(deleted):
        Flow.objects.filter(id__in=chunk).delete()
    return written, deleted
