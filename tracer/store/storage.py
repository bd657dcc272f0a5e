"""Storing a batch of captured events: one transaction for messages, flows and roll-ups.

The hot path writes with `executemany` on prepared statements — no ORM object
per event. Pairing is stateless: for every batch the groups its events touch
are loaded from the database and recomputed by tracer.store.pairing, so arrival
order does not matter and several tap processes can share a tap queue (on
PostgreSQL they take an advisory lock per reply queue; SQLite serialises
writers anyway).

Ids are allocated before anything is written, which lets a message name its
flow (a flow's id is its request's id) in the same insert.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from tracer.models import Flow, Message
from tracer.store import flow_keys, pairing, resolution, services
from tracer.store.groups import (
    known_reply_queues,
    load_groups,
    lock_reply_queues,
    remember_reply_queues,
    routed_queues_of,
)
from tracer.store.rollup import RollUp, contribution, write_flows
from tracer.store.sql import (
    SqlParam,
    chunks,
    db_time,
    is_postgres,
    quote,
    table_of,
)
from tracer.times import from_us, now_us, to_us

MESSAGE_COLUMNS = (
    "id",
    "event",
    "captured_at",
    "vhost",
    "node",
    "exchange",
    "routing_key",
    "routing_keys",
    "routed_queues",
    "queue",
    "properties",
    "correlation_id",
    "reply_to",
    "reply_key",
    "body",
    "body_size",
    "body_truncated",
    "redelivered",
    "user",
    "connection",
    "channel",
    "flow_id",
    "backlog",
    "replay_of",
    "fingerprint",
    "dedupe_key",
    "duplicates",
    "stamp_error_us",
)


class CapturedEvent(Protocol):
    """A captured event as storage sees it: tracer.tap.decoding.Captured (the store
    sits below the tap and does not import it). Storage reads the columns of its
    Message row and sets its id and flow."""

    id: int | None
    flow_id: int | None

    @property
    def event(self) -> str: ...  # "publish" or "deliver"
    @property
    def captured_us(self) -> int: ...
    @property
    def vhost(self) -> str: ...
    @property
    def node(self) -> str: ...
    @property
    def exchange(self) -> str: ...
    @property
    def routing_key(self) -> str: ...
    @property
    def routing_keys_json(self) -> str: ...
    @property
    def routed_queues_json(self) -> str | None: ...
    @property
    def queue(self) -> str: ...
    @property
    def properties_json(self) -> str: ...
    @property
    def correlation_id(self) -> str: ...
    @property
    def reply_to(self) -> str: ...
    @property
    def reply_key(self) -> str: ...
    @property
    def body(self) -> bytes: ...
    @property
    def body_size(self) -> int: ...
    @property
    def body_truncated(self) -> bool: ...
    @property
    def redelivered(self) -> bool: ...
    @property
    def user(self) -> str: ...
    @property
    def connection(self) -> str: ...
    @property
    def channel(self) -> int | None: ...
    @property
    def backlog(self) -> bool: ...
    @property
    def replay_of(self) -> int | None: ...
    @property
    def fingerprint(self) -> int: ...
    @property
    def dedupe_key(self) -> int: ...
    @property
    def stamp_error_us(self) -> int: ...


class NumberedEvent(CapturedEvent, Protocol):
    """A captured event once store_batch has given it its message id."""

    id: int


@dataclass
class BatchResult:
    received: int = 0
    stored: int = 0
    backlog: int = 0
    first_id: int | None = None
    last_id: int | None = None
    last_event_us: int | None = None
    flows: list[pairing.Flow] = field(default_factory=list)  # written by this batch
    deleted_flow_ids: set[int] = field(default_factory=set)

    def merge(self, later: "BatchResult") -> None:
        """Add the result of a batch stored after this one: the two as if one batch.

        Every field is merged here; a field added above needs its line below."""
        self.received += later.received
        self.stored += later.stored
        self.backlog += later.backlog
        if self.first_id is None:
            self.first_id = later.first_id
        if later.last_id is not None:
            self.last_id = later.last_id
        if later.last_event_us is not None and (
            self.last_event_us is None or later.last_event_us > self.last_event_us
        ):
            self.last_event_us = later.last_event_us
        # Each flow once, in its last state; one deleted and then written again is back.
        rewritten = {flow.id for flow in later.flows}
        superseded = rewritten | later.deleted_flow_ids
        self.flows = [flow for flow in self.flows if flow.id not in superseded] + later.flows
        self.deleted_flow_ids = (self.deleted_flow_ids - rewritten) | later.deleted_flow_ids


# --- ids ------------------------------------------------------------------------


def _allocate_ids(cursor: CursorWrapper, count: int) -> list[int]:
    table = Message._meta.db_table
    if is_postgres():
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, count],
        )
        return [row[0] for row in cursor.fetchall()]
    # SQLite: BEGIN IMMEDIATE holds the write lock, so the maximum cannot move.
    cursor.execute(f"SELECT MAX(id) FROM {quote(table)}")  # noqa: S608 - a model's table name
    highest = cursor.fetchone()[0] or 0
    cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
    row = cursor.fetchone()
    start = max(highest, row[0] if row else 0) + 1
    return list(range(start, start + count))


# --- pairing --------------------------------------------------------------------


def _pairing_event(captured: NumberedEvent, rules: tuple[str, ...]) -> flow_keys.Event:
    routed = captured.routed_queues_json
    request = captured.event == flow_keys.PUBLISH and bool(captured.reply_to)
    return flow_keys.Event(
        id=captured.id,
        kind=captured.event,
        at=captured.captured_us,
        vhost=captured.vhost,
        exchange=captured.exchange,
        routing_key=captured.routing_key,
        queue=captured.queue,
        correlation_id=captured.correlation_id,
        reply_to=captured.reply_to,
        redelivered=captured.redelivered,
        fingerprint=captured.fingerprint,
        backlog=captured.backlog,
        routed_queues=routed_queues_of(routed) if routed else (),
        service=services.service_of(
            captured.exchange, captured.routing_key, captured.properties_json, rules
        )
        if request
        else "",
    )


# --- the batch --------------------------------------------------------------------


def _message_row(event: NumberedEvent) -> tuple[SqlParam, ...]:
    return (
        event.id,
        event.event,
        db_time(event.captured_us),
        event.vhost,
        event.node,
        event.exchange,
        event.routing_key,
        event.routing_keys_json,
        event.routed_queues_json,
        event.queue,
        event.properties_json,
        event.correlation_id,
        event.reply_to,
        event.reply_key,
        event.body,
        event.body_size,
        event.body_truncated,
        event.redelivered,
        event.user,
        event.connection,
        event.channel,
        event.flow_id,
        event.backlog,
        event.replay_of,
        event.fingerprint,
        event.dedupe_key,
        0,
        event.stamp_error_us,
    )


def _insert_messages(cursor: CursorWrapper, events: Sequence[NumberedEvent]) -> None:
    columns = ", ".join(quote(name) for name in MESSAGE_COLUMNS)
    if is_postgres():
        # COPY: one stream for the whole batch, several times faster than INSERTs
        # (the JSON columns take their text as jsonb input).
        raw = getattr(cursor, "cursor", cursor)
        # Through Django's error wrapper: psycopg's own errors (a lock timeout, a
        # lost connection) must reach the tap as OperationalError to be retried.
        with (
            connection.wrap_database_errors,
            raw.copy(f"COPY {table_of(Message)} ({columns}) FROM STDIN") as copy,
        ):
            for event in events:
                copy.write_row(_message_row(event))
        return
    marks = ", ".join(["%s"] * len(MESSAGE_COLUMNS))
    cursor.executemany(
        f"INSERT INTO {table_of(Message)} ({columns}) VALUES ({marks})",  # noqa: S608
        [_message_row(event) for event in events],
    )


def store_batch(
    events: Sequence[CapturedEvent],
    *,
    timeout_s: float | None = None,
    now: int | None = None,
    session_update: Callable[[CursorWrapper, BatchResult], None] | None = None,
) -> BatchResult:
    """Store captured events (tracer.tap.decoding.Captured) in one transaction.

    `session_update(cursor, result)` runs inside the same transaction, so a tap's
    counters and spool positions commit with the rows they describe.
    """
    timeout_s = settings.WARREN_RPC_TIMEOUT if timeout_s is None else timeout_s
    now = now_us() if now is None else now
    result = BatchResult(received=len(events))
    with transaction.atomic(), connection.cursor() as cursor:
        # Every event is new: capture drops the broker's redeliveries before they
        # reach the spool (tracer.tap.capture).
        if events:
            for event, message_id in zip(events, _allocate_ids(cursor, len(events)), strict=True):
                event.id = message_id
            numbered = cast("Sequence[NumberedEvent]", events)
            result.first_id = numbered[0].id
            result.last_id = numbered[-1].id
            result.last_event_us = max(event.captured_us for event in events)
            result.backlog = sum(1 for event in events if event.backlog)
            _pair_and_write(cursor, numbered, timeout_s, now, result)
            result.stored = len(events)
        if session_update is not None:
            session_update(cursor, result)
    return result


def _pair_and_write(
    cursor: CursorWrapper,
    fresh: Sequence[NumberedEvent],
    timeout_s: float,
    now: int,
    result: BatchResult,
) -> None:
    rules = services.configured_rules()
    new = [_pairing_event(event, rules) for event in fresh]
    batch_requests = {
        (event.vhost, event.reply_to)
        for event in new
        if event.kind == flow_keys.PUBLISH and event.reply_to
    }
    keys = flow_keys.keys_of(new)
    lock_reply_queues(cursor, {(vhost, queue) for vhost, queue, _ in keys})
    known = known_reply_queues({(vhost, queue) for vhost, queue, _ in keys}, batch_requests)
    keys = {key for key in keys if (key[0], key[1]) in known}
    rollup = RollUp()
    flow_of: dict[int, int | None] = {}
    if keys:
        remember_reply_queues(cursor, batch_requests, result.last_event_us)
        loaded = load_groups(cursor, keys, min(event.at for event in new))
        changes = pairing.recompute(
            loaded, new, keys, known_reply_queues=known, timeout_s=timeout_s, now_us=now
        )
        flow_of = changes.flow_of
    for event in fresh:
        event.flow_id = flow_of.get(event.id)
    _insert_messages(cursor, fresh)
    if keys:
        result.flows, result.deleted_flow_ids = write_flows(cursor, changes, rollup)
        resolution.mark_flows(cursor, fresh)
        fresh_ids = {event.id for event in fresh}
        moved = [
            (flow_of[event.id], event.id)
            for event in loaded
            if event.id not in fresh_ids
            and event.id in flow_of
            and flow_of[event.id] != event.flow_id
        ]
        if moved:
            cursor.executemany(
                f"UPDATE {table_of(Message)} SET flow_id = %s WHERE id = %s",  # noqa: S608
                moved,
            )
    rollup.write(cursor)


# --- timeouts ---------------------------------------------------------------------


def sweep_timeouts(
    timeout_s: float | None = None, now: int | None = None, limit: int = 10_000
) -> int:
    """Pending flows older than the RPC timeout become `timeout`; returns how many."""
    timeout_s = settings.WARREN_RPC_TIMEOUT if timeout_s is None else timeout_s
    now = now_us() if now is None else now
    cutoff = from_us(now - int(timeout_s * 1_000_000))
    rollup = RollUp()
    swept = 0
    with transaction.atomic(), connection.cursor() as cursor:
        candidates = {
            row["id"]: row
            for row in Flow.objects.filter(status=pairing.PENDING, requested_at__lt=cutoff).values(
                "id", "vhost", "service", "late", "backlog", "requested_at"
            )[:limit]
        }
        for chunk in chunks(candidates):
            marks = ", ".join(["%s"] * len(chunk))
            # Only rows still pending now: another tap may have swept or answered them.
            cursor.execute(
                f"UPDATE {table_of(Flow)} SET status = %s "  # noqa: S608
                f"WHERE status = %s AND id IN ({marks}) RETURNING id",
                [pairing.TIMEOUT, pairing.PENDING, *chunk],
            )
            for (flow_id,) in cursor.fetchall():
                row = candidates[flow_id]
                requested = to_us(row["requested_at"])
                vhost, service, late, backlog = (
                    row["vhost"],
                    row["service"],
                    row["late"],
                    row["backlog"],
                )
                rollup.add(
                    contribution(vhost, service, pairing.PENDING, late, backlog, requested, None),
                    -1,
                )
                rollup.add(
                    contribution(vhost, service, pairing.TIMEOUT, late, backlog, requested, None),
                    +1,
                )
                swept += 1
        rollup.write(cursor)
    return swept
