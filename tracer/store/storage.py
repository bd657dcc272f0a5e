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

import functools
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from tracer.models import Flow, LatencyBucket, Message, ReplyQueue, ServiceMinute, TapSession
from tracer.store import pairing, stats
from tracer.times import from_us, minute_us, now_us, to_us

IN_CHUNK = 500
# How far back a batch looks for the rest of a group (see DESIGN §6).
CORRELATION_HORIZON_S = 3600
REPLY_TO_HORIZON_S = 60

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
)
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
_FLOW_TIMES = {
    "started_at",
    "requested_at",
    "request_delivered_at",
    "replied_at",
    "reply_delivered_at",
}
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
)


@dataclass
class BatchResult:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    backlog: int = 0
    first_id: int | None = None
    last_id: int | None = None
    last_event_us: int | None = None
    flows: list = field(default_factory=list)  # pairing.Flow written by this batch
    deleted_flow_ids: set = field(default_factory=set)


def _q(name):
    return connection.ops.quote_name(name)


def _table(model):
    return _q(model._meta.db_table)


_NAIVE_EPOCH = datetime(1970, 1, 1)


@functools.cache
def _is_sqlite():
    return connection.vendor == "sqlite"


def _db_time(us):
    """A time parameter as the backend stores it (SQLite: Django's naive UTC text)."""
    if us is None:
        return None
    if _is_sqlite():
        return _sqlite_time(us)
    return from_us(us)


_second_texts = {}


def _sqlite_time(us):
    """str(naive UTC datetime), as Django writes it, without a datetime per call.

    The tap writes tens of thousands of times a second that share a handful of
    seconds: the "YYYY-MM-DD HH:MM:SS" part is kept per second.
    """
    seconds, micro = divmod(us, 1_000_000)
    prefix = _second_texts.get(seconds)
    if prefix is None:
        if len(_second_texts) > 4096:
            _second_texts.clear()
        prefix = _second_texts[seconds] = str(_NAIVE_EPOCH + timedelta(seconds=seconds))
        _remember_second(prefix)
    return f"{prefix}.{micro:06d}" if micro else prefix


# The tap's connection writes index pages all over the message table: a page
# cache far above SQLite's default 2 MB keeps them in memory (bounded: 16 MB),
# and the write-ahead log is folded back (with an fsync) every 64 MB rather than
# every 4 MB, not after nearly every big batch.
WRITER_PRAGMAS = (
    "PRAGMA cache_size = -16384",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA wal_autocheckpoint = 16384",
)


def tune_writer_connection(sender=None, connection=None, **_):
    """connection_created receiver (and direct call): SQLite settings for the tap."""
    if connection is not None and connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            for pragma in WRITER_PRAGMAS:
                cursor.execute(pragma)


def _chunks(items, size=IN_CHUNK):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_postgres():
    return not _is_sqlite()


# --- ids ------------------------------------------------------------------------


def _allocate_ids(cursor, count):
    table = Message._meta.db_table
    if _is_postgres():
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, count],
        )
        return [row[0] for row in cursor.fetchall()]
    # SQLite: BEGIN IMMEDIATE holds the write lock, so the maximum cannot move.
    cursor.execute(f"SELECT MAX(id) FROM {_q(table)}")  # noqa: S608 - a model's table name
    highest = cursor.fetchone()[0] or 0
    cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
    row = cursor.fetchone()
    start = max(highest, row[0] if row else 0) + 1
    return list(range(start, start + count))


# --- duplicates -----------------------------------------------------------------


def find_duplicates(events):
    """Redelivered trace events already stored: {event index: original message id}.

    Only a batch committed but not acked before a crash (or a lost connection)
    can come back; its id range is kept on its TapSession (`unacked_ranges`)
    until later batches are acked. An original absorbs at most one copy per
    batch, so two identical events that were both in flight stay two.
    """
    wanted = {event.dedupe_key for event in events if event.tap_redelivered}
    if not wanted:
        return {}
    ranges = []
    for session_ranges in TapSession.objects.values_list("unacked_ranges", flat=True):
        ranges.extend((int(first), int(last)) for first, last, *_ in session_ranges or ())
    if not ranges:
        return {}
    originals = defaultdict(list)
    for first, last in ranges:
        rows = Message.objects.filter(
            id__gte=first, id__lte=last, dedupe_key__in=list(wanted)
        ).values_list("id", "dedupe_key")
        for message_id, key in rows:
            originals[key].append(message_id)
    found = {}
    used = set()
    for index, event in enumerate(events):
        if not event.tap_redelivered:
            continue
        for message_id in sorted(originals.get(event.dedupe_key, ())):
            if message_id not in used:
                used.add(message_id)
                found[index] = message_id
                break
    return found


# --- pairing --------------------------------------------------------------------


def _pairing_event(captured):
    return pairing.Event(
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
    )


_second_values = {}


def _us_from_db(value):
    """A time column as microseconds: SQLite gives text, PostgreSQL a datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        # "YYYY-MM-DD HH:MM:SS[.ffffff]" as _sqlite_time writes it: the seconds
        # are looked up per distinct second, the fraction read as it is.
        size = len(value)
        if size != 19 and (size != 26 or value[19] != "."):
            return to_us(datetime.fromisoformat(value))
        seconds = _second_values.get(value[:19])
        if seconds is None:
            seconds = _remember_second(value[:19])
        return seconds + (int(value[20:]) if size == 26 else 0)
    return to_us(value)


def _remember_second(text):
    if len(_second_values) > 4096:
        _second_values.clear()
    value = _second_values[text] = to_us(datetime.fromisoformat(text))
    return value


def _stored_event(row):
    (message_id, kind, at, vhost, exchange, routing_key, queue, correlation_id, reply_to,
     redelivered, fingerprint, backlog, flow_id) = row  # fmt: skip
    return pairing.Event(
        id=message_id,
        kind=kind,
        at=_us_from_db(at),
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
    )


def _column(name, is_time):
    """A column to select; on SQLite a time comes as its stored text (CAST): the
    driver's datetime converter per value costs more than _us_from_db reading it."""
    if is_time and _is_sqlite():
        return f"CAST({_q(name)} AS TEXT)"
    return _q(name)


def _select(cursor, where, params):
    """Pairing columns of messages, with plain SQL: no ORM object, no converters."""
    columns = ", ".join(_column(name, name == "captured_at") for name in _PAIRING_FIELDS)
    cursor.execute(f"SELECT {columns} FROM {_table(Message)} WHERE {where}", params)  # noqa: S608
    return [_stored_event(row) for row in cursor.fetchall()]


def _marks(count):
    return ", ".join(["%s"] * count)


def _lock_reply_queues(cursor, queues):
    """PostgreSQL: one advisory lock per (vhost, reply queue), always in one order."""
    if not _is_postgres() or not queues:
        return
    keys = sorted({zlib.crc32(f"{vhost}\x00{name}".encode()) for vhost, name in queues})
    cursor.execute(
        "SELECT count(pg_advisory_xact_lock(k)) FROM "
        "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) AS ordered",
        [keys],
    )


def _known_reply_queues(candidates, batch_requests):
    known = {queue for queue in candidates if pairing.is_direct_reply_to(queue[1])}
    known |= candidates & batch_requests
    unknown = candidates - known
    by_vhost = defaultdict(set)
    for vhost, name in unknown:
        by_vhost[vhost].add(name)
    for vhost, names in by_vhost.items():
        for chunk in _chunks(names):
            rows = ReplyQueue.objects.filter(vhost=vhost, name__in=chunk)
            known.update((vhost, name) for name in rows.values_list("name", flat=True))
    return known


def _remember_reply_queues(cursor, batch_requests, last_us):
    rows = [
        (vhost, name, _db_time(last_us))
        for vhost, name in sorted(batch_requests)
        if not pairing.is_direct_reply_to(name)
    ]
    if not rows:
        return
    cursor.executemany(
        f"INSERT INTO {_table(ReplyQueue)} (vhost, name, last_request_at) "  # noqa: S608
        "VALUES (%s, %s, %s) ON CONFLICT (vhost, name) "
        "DO UPDATE SET last_request_at = excluded.last_request_at",
        rows,
    )


def _load_groups(cursor, keys, earliest_us):
    """Stored events of the groups in `keys`, and of the flows their requests lead."""
    loaded = {}
    by_correlation = defaultdict(set)
    by_reply_queue = set()
    for vhost, reply_queue, correlation_id in keys:
        if correlation_id:
            by_correlation[vhost].add(correlation_id)
        else:
            by_reply_queue.add((vhost, reply_queue))
    since = earliest_us - CORRELATION_HORIZON_S * 1_000_000
    for vhost, correlation_ids in by_correlation.items():
        for chunk in _chunks(correlation_ids):
            # Only the correlation ids in SQL, the vhost and time checked here: with
            # either in the WHERE clause a planner may take the (vhost, time) index
            # and scan the vhost's history instead of a few rows — SQLite with a
            # time condition, PostgreSQL whenever its statistics still call the
            # vhost rare (a bulk load, a newly traced vhost: 1 s a batch at 2.6 M
            # rows). A correlation id shared across vhosts costs a few rows more.
            where = f"correlation_id IN ({_marks(len(chunk))})"
            for event in _select(cursor, where, chunk):
                if event.vhost == vhost and event.at >= since:
                    loaded[event.id] = event
    since = _db_time(earliest_us - REPLY_TO_HORIZON_S * 1_000_000)
    for vhost, reply_queue in sorted(by_reply_queue):
        where = "correlation_id = %s AND vhost = %s AND reply_key = %s AND captured_at >= %s"
        for event in _select(cursor, where, ["", vhost, reply_queue, since]):
            loaded[event.id] = event
    flow_ids = {event.flow_id for event in loaded.values() if event.flow_id is not None}
    flow_ids |= {event.id for event in loaded.values() if event.reply_to}
    for chunk in _chunks(flow_ids):
        for event in _select(cursor, f"flow_id IN ({_marks(len(chunk))})", chunk):
            loaded.setdefault(event.id, event)
    return list(loaded.values())


# --- flows and roll-ups ------------------------------------------------------------


def _flow_row(flow):
    values = []
    for name in FLOW_COLUMNS:
        value = getattr(flow, name)
        values.append(_db_time(value) if name in _FLOW_TIMES else value)
    return values


def _existing_flows(cursor, ids):
    existing = {}
    columns = ", ".join(_column(name, name in _FLOW_TIMES) for name in ("id", *FLOW_COLUMNS))
    names = ("id", *FLOW_COLUMNS)
    for chunk in _chunks(ids):
        cursor.execute(
            f"SELECT {columns} FROM {_table(Flow)} WHERE id IN ({_marks(len(chunk))})",  # noqa: S608
            chunk,
        )
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            for name in _FLOW_TIMES:
                row[name] = _us_from_db(row[name])
            row["late"], row["backlog"] = bool(row["late"]), bool(row["backlog"])
            existing[row["id"]] = row
    return existing


def contribution(vhost, service, status, late, backlog, requested_us, latency_ms):
    """What one flow adds to the per-minute roll-ups, or None."""
    if status == pairing.ORPHAN or backlog or not service or requested_us is None:
        return None
    timed_out = status == pairing.TIMEOUT or bool(late)
    return (vhost, service, minute_us(requested_us)), timed_out, latency_ms


def _flow_contribution(flow):
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


class RollUp:
    """Deltas for ServiceMinute and LatencyBucket, applied with one upsert each."""

    def __init__(self):
        self.minutes = defaultdict(lambda: [0, 0, 0, 0.0, 0.0])
        self.buckets = Counter()

    def add(self, part, sign):
        if part is None:
            return
        key, timed_out, latency = part
        row = self.minutes[key]
        row[0] += sign
        row[1] += sign if timed_out else 0
        if latency is not None:
            row[2] += sign
            row[3] += sign * latency
            if sign > 0:
                row[4] = max(row[4], latency)
            self.buckets[(*key, stats.bucket_of(latency))] += sign

    def change(self, old, new):
        before, after = _flow_contribution(old), _flow_contribution(new)
        if before != after:
            self.add(before, -1)
            self.add(after, +1)

    def write(self, cursor):
        greatest = "GREATEST" if _is_postgres() else "MAX"
        minutes = [
            (vhost, service, _db_time(minute), *values)
            for (vhost, service, minute), values in self.minutes.items()
            if any(values)
        ]
        if minutes:
            table = _table(ServiceMinute)
            cursor.executemany(
                f"INSERT INTO {table} (vhost, service, minute, calls, timeouts, answered, "  # noqa: S608
                "latency_sum_ms, latency_max_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (vhost, service, minute) DO UPDATE SET "
                f"calls = {table}.calls + excluded.calls, "
                f"timeouts = {table}.timeouts + excluded.timeouts, "
                f"answered = {table}.answered + excluded.answered, "
                f"latency_sum_ms = {table}.latency_sum_ms + excluded.latency_sum_ms, "
                f"latency_max_ms = {greatest}({table}.latency_max_ms, excluded.latency_max_ms)",
                minutes,
            )
        buckets = [
            (service, _db_time(minute), vhost, bucket, count)
            for (vhost, service, minute, bucket), count in self.buckets.items()
            if count
        ]
        if buckets:
            table = _table(LatencyBucket)
            cursor.executemany(
                f"INSERT INTO {table} (service, minute, vhost, bucket, count) "  # noqa: S608
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (service, minute, vhost, bucket) "
                f"DO UPDATE SET count = {table}.count + excluded.count",
                buckets,
            )


def _write_flows(cursor, changes, rollup):
    """Insert, update and delete flows; returns (written flows, deleted ids)."""
    existing = _existing_flows(cursor, set(changes.flows) | changes.delete_flow_ids)
    inserts, written = [], []
    updates = defaultdict(list)  # changed columns -> rows: one statement per shape
    for flow_id, flow in changes.flows.items():
        old = existing.get(flow_id)
        if old is None:
            inserts.append([flow_id, *_flow_row(flow)])
        else:
            changed = tuple(name for name in FLOW_COLUMNS if getattr(flow, name) != old[name])
            if not changed:
                continue
            values = [getattr(flow, name) for name in changed]
            values = [
                _db_time(value) if name in _FLOW_TIMES else value
                for name, value in zip(changed, values, strict=True)
            ]
            updates[changed].append([*values, flow_id])
        written.append(flow)
        rollup.change(old, flow)
    deleted = {flow_id for flow_id in changes.delete_flow_ids if flow_id in existing}
    for flow_id in deleted:
        rollup.change(existing[flow_id], None)
    table = _table(Flow)
    columns = ", ".join(_q(name) for name in FLOW_COLUMNS)
    if inserts:
        marks = ", ".join(["%s"] * (len(FLOW_COLUMNS) + 1))
        cursor.executemany(
            f"INSERT INTO {table} (id, {columns}) VALUES ({marks})",  # noqa: S608
            inserts,
        )
    for changed, rows in updates.items():
        assignments = ", ".join(f"{_q(name)} = %s" for name in changed)
        cursor.executemany(
            f"UPDATE {table} SET {assignments} WHERE id = %s",  # noqa: S608
            rows,
        )
    for chunk in _chunks(deleted):
        Flow.objects.filter(id__in=chunk).delete()
    return written, deleted


# --- the batch --------------------------------------------------------------------


def _message_row(event):
    return (
        event.id,
        event.event,
        _db_time(event.captured_us),
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
    )


def _insert_messages(cursor, events):
    columns = ", ".join(_q(name) for name in MESSAGE_COLUMNS)
    if _is_postgres():
        # COPY: one stream for the whole batch, several times faster than INSERTs
        # (the JSON columns take their text as jsonb input).
        raw = getattr(cursor, "cursor", cursor)
        # Through Django's error wrapper: psycopg's own errors (a lock timeout, a
        # lost connection) must reach the tap as OperationalError to be retried.
        with (
            connection.wrap_database_errors,
            raw.copy(f"COPY {_table(Message)} ({columns}) FROM STDIN") as copy,
        ):
            for event in events:
                copy.write_row(_message_row(event))
        return
    marks = ", ".join(["%s"] * len(MESSAGE_COLUMNS))
    cursor.executemany(
        f"INSERT INTO {_table(Message)} ({columns}) VALUES ({marks})",  # noqa: S608
        [_message_row(event) for event in events],
    )


def store_batch(events, *, timeout_s=None, now=None, session_update=None):
    """Store captured events (tracer.tap.decoding.Captured) in one transaction.

    `session_update(cursor, result)` runs inside the same transaction, so a tap's
    counters and unacked id ranges commit with the rows they describe.
    """
    timeout_s = settings.WARREN_RPC_TIMEOUT if timeout_s is None else timeout_s
    now = now_us() if now is None else now
    result = BatchResult(received=len(events))
    with transaction.atomic(), connection.cursor() as cursor:
        duplicates = find_duplicates(events)
        if duplicates:
            counts = Counter(duplicates.values())
            cursor.executemany(
                f"UPDATE {_table(Message)} SET duplicates = duplicates + %s WHERE id = %s",  # noqa: S608
                [(count, message_id) for message_id, count in sorted(counts.items())],
            )
        fresh = [event for index, event in enumerate(events) if index not in duplicates]
        result.duplicates = len(duplicates)
        if fresh:
            for event, message_id in zip(fresh, _allocate_ids(cursor, len(fresh)), strict=True):
                event.id = message_id
            result.first_id = fresh[0].id
            result.last_id = fresh[-1].id
            result.last_event_us = max(event.captured_us for event in fresh)
            result.backlog = sum(1 for event in fresh if event.backlog)
            _pair_and_write(cursor, fresh, timeout_s, now, result)
            result.stored = len(fresh)
        if session_update is not None:
            session_update(cursor, result)
    return result


def _pair_and_write(cursor, fresh, timeout_s, now, result):
    new = [_pairing_event(event) for event in fresh]
    batch_requests = {
        (event.vhost, event.reply_to)
        for event in new
        if event.kind == pairing.PUBLISH and event.reply_to
    }
    keys = pairing.keys_of(new)
    _lock_reply_queues(cursor, {(vhost, queue) for vhost, queue, _ in keys})
    known = _known_reply_queues({(vhost, queue) for vhost, queue, _ in keys}, batch_requests)
    keys = {key for key in keys if (key[0], key[1]) in known}
    rollup = RollUp()
    flow_of = {}
    if keys:
        _remember_reply_queues(cursor, batch_requests, result.last_event_us)
        loaded = _load_groups(cursor, keys, min(event.at for event in new))
        changes = pairing.recompute(
            loaded, new, keys, known_reply_queues=known, timeout_s=timeout_s, now_us=now
        )
        flow_of = changes.flow_of
    for event in fresh:
        event.flow_id = flow_of.get(event.id)
    _insert_messages(cursor, fresh)
    if keys:
        result.flows, result.deleted_flow_ids = _write_flows(cursor, changes, rollup)
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
                f"UPDATE {_table(Message)} SET flow_id = %s WHERE id = %s",  # noqa: S608
                moved,
            )
    rollup.write(cursor)


# --- timeouts ---------------------------------------------------------------------


def sweep_timeouts(timeout_s=None, now=None, limit=10_000):
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
        for chunk in _chunks(candidates):
            marks = ", ".join(["%s"] * len(chunk))
            # Only rows still pending now: another tap may have swept or answered them.
            cursor.execute(
                f"UPDATE {_table(Flow)} SET status = %s "  # noqa: S608
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
