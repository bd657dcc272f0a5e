"""The stored side of a batch's pairing groups: loading them, and the reply queues.

Pairing is stateless (docs/architecture.md, Storing a batch): every batch loads
the stored events of the groups its own events touch — by correlation id, or
by reply queue for calls without one — and the flows their requests lead,
then tracer.store.pairing recomputes them with the new events.
"""

import json
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import TypeAlias

from django.db.backends.utils import CursorWrapper

from tracer.models import Message, ReplyQueue
from tracer.store import flow_keys, services
from tracer.store.flow_keys import GroupKey, ReplyQueueKey
from tracer.store.sql import (
    DbTime,
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

# How far back a batch looks for the rest of a group (see docs/architecture.md, Storing a batch).
CORRELATION_HORIZON_S = 3600
REPLY_TO_HORIZON_S = 60

_PAIRING_FIELDS = (
    "id",
    "event",
    "captured_at",
    "vhost",
    "exchange",
    "routing_key",
    "queue",
    "correlation_id",
    "reply_to",
    "redelivered",
    "fingerprint",
    "backlog",
    "flow_id",
    "routed_queues",
    "properties",
)
# Properties are read for requests only: the service rules need them, nothing else does.
_REQUEST_PROPERTIES = (
    f"CASE WHEN {quote('event')} = 'publish' AND {quote('reply_to')} <> '' "
    f"THEN {quote('properties')} END"
)


# A stored message's pairing columns, in _PAIRING_FIELDS order (booleans may come as 0/1;
# JSON as text or already decoded, depending on the database).
_StoredRow: TypeAlias = tuple[
    int, str, DbTime, str, str, str, str, str, str, int, int, int, int | None, object, object
]


def routed_queues_of(stored: object) -> tuple[str, ...]:
    """A publish's routed queues as a database column or a captured event holds them."""
    if isinstance(stored, bytes | bytearray | memoryview):
        stored = bytes(stored).decode("utf-8", "replace")
    if isinstance(stored, str):
        try:
            stored = json.loads(stored) if stored else None
        except ValueError:
            return ()
    if isinstance(stored, list | tuple):
        return tuple(queue for queue in stored if isinstance(queue, str))
    return ()


def stored_event(row: _StoredRow, rules: tuple[str, ...]) -> flow_keys.Event:
    (message_id, kind, at, vhost, exchange, routing_key, queue, correlation_id, reply_to,
     redelivered, fingerprint, backlog, flow_id, routed, properties) = row  # fmt: skip
    request = kind == flow_keys.PUBLISH and bool(reply_to)
    return flow_keys.Event(
        id=message_id,
        kind=kind,
        at=us_from_db(at),
        vhost=vhost,
        exchange=exchange,
        routing_key=routing_key,
        queue=queue,
        correlation_id=correlation_id,
        reply_to=reply_to,
        redelivered=bool(redelivered),
        fingerprint=fingerprint,
        backlog=bool(backlog),
        flow_id=flow_id,
        routed_queues=routed_queues_of(routed),
        service=services.service_of(exchange, routing_key, properties, rules) if request else "",
    )


def select_events(
    cursor: CursorWrapper, where: str, params: Sequence[SqlParam]
) -> list[flow_keys.Event]:
    """Pairing columns of messages, with plain SQL: no ORM object, no converters."""
    columns = ", ".join(
        _REQUEST_PROPERTIES if name == "properties" else column(name, name == "captured_at")
        for name in _PAIRING_FIELDS
    )
    cursor.execute(f"SELECT {columns} FROM {table_of(Message)} WHERE {where}", params)  # noqa: S608
    rules = services.configured_rules()
    return [stored_event(row, rules) for row in cursor.fetchall()]


def lock_reply_queues(cursor: CursorWrapper, queues: AbstractSet[ReplyQueueKey]) -> None:
    """PostgreSQL: one advisory lock per (vhost, reply queue), always in one order."""
    if not is_postgres() or not queues:
        return
    keys = sorted({zlib.crc32(f"{vhost}\x00{name}".encode()) for vhost, name in queues})
    cursor.execute(
        "SELECT count(pg_advisory_xact_lock(k)) FROM "
        "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) AS ordered",
        [keys],
    )


def known_reply_queues(
    candidates: set[ReplyQueueKey], batch_requests: set[ReplyQueueKey]
) -> set[ReplyQueueKey]:
    known = {queue for queue in candidates if flow_keys.is_direct_reply_to(queue[1])}
    known |= candidates & batch_requests
    unknown = candidates - known
    by_vhost: defaultdict[str, set[str]] = defaultdict(set)
    for vhost, name in unknown:
        by_vhost[vhost].add(name)
    for vhost, names in by_vhost.items():
        for chunk in chunks(names):
            rows = ReplyQueue.objects.filter(vhost=vhost, name__in=chunk)
            known.update((vhost, name) for name in rows.values_list("name", flat=True))
    return known


def remember_reply_queues(
    cursor: CursorWrapper, batch_requests: AbstractSet[ReplyQueueKey], last_us: int | None
) -> None:
    rows = [
        (vhost, name, db_time(last_us))
        for vhost, name in sorted(batch_requests)
        if not flow_keys.is_direct_reply_to(name)
    ]
    if not rows:
        return
    cursor.executemany(
        f"INSERT INTO {table_of(ReplyQueue)} (vhost, name, last_request_at) "  # noqa: S608
        "VALUES (%s, %s, %s) ON CONFLICT (vhost, name) "
        "DO UPDATE SET last_request_at = excluded.last_request_at",
        rows,
    )


def load_groups(
    cursor: CursorWrapper, keys: Iterable[GroupKey], earliest_us: int
) -> list[flow_keys.Event]:
    """Stored events of the groups in `keys`, and of the flows their requests lead."""
    loaded: dict[int, flow_keys.Event] = {}
    by_correlation: defaultdict[str, set[str]] = defaultdict(set)
    by_reply_queue: set[ReplyQueueKey] = set()
    for vhost, reply_queue, correlation_id in keys:
        if correlation_id:
            by_correlation[vhost].add(correlation_id)
        else:
            by_reply_queue.add((vhost, reply_queue))
    since_us = earliest_us - CORRELATION_HORIZON_S * 1_000_000
    for vhost, correlation_ids in by_correlation.items():
        for chunk in chunks(correlation_ids):
            # Only the correlation ids in SQL, the vhost and time checked here: with
            # either in the WHERE clause a planner may take the (vhost, time) index
            # and scan the vhost's history instead of a few rows — SQLite with a
            # time condition, PostgreSQL whenever its statistics still call the
            # vhost rare (a bulk load, a newly traced vhost: 1 s a batch at 2.6 M
            # rows). A correlation id shared across vhosts costs a few rows more.
            where = f"correlation_id IN ({marks(len(chunk))})"
            for event in select_events(cursor, where, chunk):
                if event.vhost == vhost and event.at >= since_us:
                    loaded[event.id] = event
    since = db_time(earliest_us - REPLY_TO_HORIZON_S * 1_000_000)
    where = "correlation_id = %s AND vhost = %s AND reply_key = %s AND captured_at >= %s"
    for vhost, reply_queue in sorted(by_reply_queue):
        found = select_events(cursor, where, ["", vhost, reply_queue, since])
        # A reply routed by key to a queue of another name (reply_to as a routing key on
        # the framework's own exchange): its deliveries are filed under that queue.
        elsewhere = {
            queue
            for event in found
            if event.kind == flow_keys.PUBLISH and event.routing_key == reply_queue
            for queue in event.routed_queues
            if queue != reply_queue
        }
        for queue in sorted(elsewhere):
            found += [
                event
                for event in select_events(cursor, where, ["", vhost, queue, since])
                if event.kind == flow_keys.DELIVER and event.routing_key == reply_queue
            ]
        for event in found:
            loaded[event.id] = event
    flow_ids = {event.flow_id for event in loaded.values() if event.flow_id is not None}
    flow_ids |= {event.id for event in loaded.values() if event.reply_to}
    for ids in chunks(flow_ids):
        for event in select_events(cursor, f"flow_id IN ({marks(len(ids))})", ids):
            loaded.setdefault(event.id, event)
    return list(loaded.values())
