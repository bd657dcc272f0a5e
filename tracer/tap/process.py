"""The tap (docs/architecture.md, Storing a batch): firehose in, batches stored, acks after commit.

Reader threads (tracer/tap/reader.py), one per traced vhost, queue the events
their feeder processes stamped and decoded, in chunks; this writer thread takes
up to `batch_size` events or what arrived within `batch_ms`, stores them in one transaction
(tracer/store/storage.py), and only then acks them (multiple). A crash loses nothing:
unacked events come back, and those already stored are recognised as
duplicates through the id ranges kept on the TapSession row.

Once a second the writer sweeps timed-out flows, writes its counters (what
/api/tap/status reports) and, with `*`, follows vhosts created and deleted.
Gaps — the tap away, a lost connection, tracing found off, events dropped by
the bounded queue — become TapGap rows.
"""

import logging
import os
import queue
import socket
import threading
import time
from collections import deque
from typing import TypeAlias

from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.db.backends.signals import connection_created
from django.db.backends.utils import CursorWrapper

from rabbit.brokers import default_broker
from rabbit.management import ManagementClient
from rabbit.management_http import BrokerError
from tracer.live import publish as live
from tracer.models import TapGap, TapSession
from tracer.store import sql, storage
from tracer.tap.config import TapConfig
from tracer.tap.decoding import Captured
from tracer.tap.reader import Chunk, Control, VhostReader
from tracer.times import from_us, now_us

log = logging.getLogger("tracer.tap")

ALL_VHOSTS = "*"
TICK_S = 1.0
VHOST_SCAN_S = 10.0
ALIVE_S = 10.0  # a session whose heartbeat is older than this is not running
ACK_GRACE_S = 2.0  # an acked batch's range is kept this long (the ack may be lost)
OVERFLOW_MERGE_S = 5.0


# What the writer takes from its inbox: a reader's news, or a chunk of its events.
InboxItem: TypeAlias = "Control | Chunk"


class BatchRecord:
    """The id range of a committed batch, and when its acks went out."""

    __slots__ = ("first_id", "last_id", "acked_at")

    first_id: int
    last_id: int
    acked_at: float | None  # time.monotonic()

    def __init__(self, first_id: int, last_id: int) -> None:
        self.first_id = first_id
        self.last_id = last_id
        self.acked_at = None


class Tap:
    def __init__(self, config: TapConfig) -> None:
        self.config = config
        self.pid = os.getpid()
        # Control, or (reader, generation, [(tag, event)])
        self.inbox: queue.SimpleQueue[InboxItem] = queue.SimpleQueue()
        self._carry: Chunk | None = None  # events collected beyond a batch, first in the next
        self.stopping = threading.Event()
        self.finished = threading.Event()
        self.readers: dict[str, VhostReader] = {}
        self.session_id: int | None = None
        self.batches_done = 0
        self.counters: dict[str, int] = {
            "received": 0,
            "stored": 0,
            "duplicates": 0,
            "backlog": 0,
            "dropped": 0,
        }
        self.lag_ms = 0.0
        self.last_event_us: int | None = None
        self.problems: dict[str, str] = {}  # what keeps the tap from working, by topic
        self._records: deque[BatchRecord] = deque()
        self._management: ManagementClient | None = None
        self._next_scan = 0.0
        self._previous_alive: dict[str, tuple[int, str]] = {}  # vhost -> (since µs, reason)
        self._batch_records: list[BatchRecord] = []
        self.shared_vhosts: set[str] = set()

    def management(self) -> ManagementClient:
        if self._management is None:
            self._management = default_broker().client()
        return self._management

    def stop(self, *_: object) -> None:
        self.stopping.set()

    # --- main loop -------------------------------------------------------------

    def run(self) -> None:
        # Every connection this process opens writes like the tap: a bigger page cache.
        connection_created.connect(sql.tune_writer_connection)
        if connection.connection is not None:
            sql.tune_writer_connection(connection=connection)
        self._start_session()
        reason = "stopped"
        try:
            self._sync_readers()
            self._loop()
        except BaseException as error:
            reason = f"failed: {type(error).__name__}: {error}"
            log.exception("the tap failed")
            raise
        finally:
            self.stopping.set()
            self._finish(reason)

    def _loop(self) -> None:
        next_tick = time.monotonic() + TICK_S
        while True:
            items = self._collect()
            if items:
                self._handle(items)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + TICK_S
                self._tick()
            quiet = self.inbox.empty() and self._carry is None
            if self.stopping.is_set() and self._readers_quiet() and quiet:
                return

    def _readers_quiet(self) -> bool:
        return all(reader.cancelled.is_set() for reader in self.readers.values())

    def _collect(self) -> list[InboxItem]:
        """Controls and event chunks for one batch: up to batch_size events or batch_ms."""
        items: list[InboxItem] = []
        count = 0
        if self._carry is not None:
            items, count, self._carry = [self._carry], len(self._carry[2]), None
        else:
            try:
                first = self.inbox.get(timeout=0.2)
            except queue.Empty:
                return []
            items.append(first)
            count = 0 if isinstance(first, Control) else len(first[2])
        limit = self.config.batch_size
        deadline = time.monotonic() + self.config.batch_ms / 1000.0
        while count < limit:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self.inbox.get(timeout=remaining)
                except queue.Empty:
                    break
            items.append(item)
            if not isinstance(item, Control):
                count += len(item[2])
        if count > limit:
            # The last chunk overshoots: its rest opens the next batch.
            last = items[-1]
            assert not isinstance(last, Control)  # only a chunk adds to the count
            reader, generation, pairs = last
            keep = len(pairs) - (count - limit)
            items[-1] = (reader, generation, pairs[:keep])
            self._carry = (reader, generation, pairs[keep:])
        return items

    def _handle(self, items: list[InboxItem]) -> None:
        events: list[Captured] = []
        # (reader, generation) -> highest delivery tag in this batch
        highest: dict[tuple[VhostReader, int | None], int] = {}
        for item in items:
            if isinstance(item, Control):
                self._control(item)
                continue
            reader, generation, pairs = item
            if not pairs:
                continue
            events.extend([event for _, event in pairs])
            key = (reader, generation)
            if generation is None:
                highest[key] = 0  # rescued through the management API: nothing to ack
            else:
                highest[key] = max(highest.get(key, 0), pairs[-1][0])
        if not events:
            return
        first_arrival = min(event.captured_us for event in events)
        self._batch_records = []
        result = self._store(events)
        self.lag_ms = max(0.0, (now_us() - first_arrival) / 1000.0)
        self.batches_done += 1
        if self.config.crash_after_batches and self.batches_done >= self.config.crash_after_batches:
            os._exit(70)  # committed, not acked: the fault the tests need
        self._ack(highest, self._batch_records)
        live.publish_batch(result, events)

    def _ack(
        self, highest: dict[tuple[VhostReader, int | None], int], records: list[BatchRecord]
    ) -> None:
        pending = [len(highest)]

        def one_acked() -> None:
            pending[0] -= 1
            if pending[0] <= 0:
                for record in records:
                    record.acked_at = time.monotonic()

        for (reader, generation), tag in highest.items():
            reader.ack(generation, tag, one_acked)

    # --- storing ---------------------------------------------------------------

    def _store(self, events: list[Captured]) -> storage.BatchResult:
        delay = 0.2
        deadline: float | None = None
        while True:
            try:
                result = storage.store_batch(
                    events, timeout_s=self.config.timeout_s, session_update=self._session_update
                )
                self.problems.pop("database", None)
                return result
            except (OperationalError, InterfaceError) as error:
                # The database is busy or away: keep the events (unacked) and retry.
                self.problems["database"] = f"cannot store events: {error}"
                log.warning("tap cannot store a batch, retrying: %s", error)
                connection.close()
                if self.stopping.is_set():
                    # Half the grace for retrying a batch the database refuses, once asked to stop.
                    deadline = deadline or time.monotonic() + self.config.stop_grace_s / 2
                    if time.monotonic() > deadline:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            except (DatabaseError, ValueError, TypeError, OverflowError) as error:
                log.warning("a batch failed (%s); storing its events one by one", error)
                return self._store_one_by_one(events)

    def _store_one_by_one(self, events: list[Captured]) -> storage.BatchResult:
        total = storage.BatchResult()
        for event in events:
            try:
                result = storage.store_batch(
                    [event], timeout_s=self.config.timeout_s, session_update=self._session_update
                )
            except (OperationalError, InterfaceError):
                raise
            except (DatabaseError, ValueError, TypeError, OverflowError) as error:
                log.warning("event unstorable as captured (%s); storing it stripped", error)
                _strip(event, error)
                try:
                    result = storage.store_batch(
                        [event],
                        timeout_s=self.config.timeout_s,
                        session_update=self._session_update,
                    )
                except (DatabaseError, ValueError, TypeError, OverflowError):
                    log.exception("event dropped: it cannot be stored even stripped")
                    continue
            total.merge(result)
        return total

    def _session_update(self, cursor: CursorWrapper, result: storage.BatchResult) -> None:
        for name in ("received", "stored", "duplicates", "backlog"):
            self.counters[name] += getattr(result, name)
        if result.last_event_us:
            self.last_event_us = max(self.last_event_us or 0, result.last_event_us)
        if result.first_id is not None and result.last_id is not None:  # both, or neither
            record = BatchRecord(result.first_id, result.last_id)
            self._records.append(record)
            self._batch_records.append(record)
        self._write_session()

    def _unacked_ranges(self) -> list[list[int]]:
        now = time.monotonic()
        while self._records and self._records[0].acked_at is not None:
            if now - self._records[0].acked_at < ACK_GRACE_S:
                break
            self._records.popleft()
        return [[record.first_id, record.last_id] for record in self._records]

    def _write_session(self, **extra: object) -> None:
        fields: dict[str, object] = dict(self.counters)
        fields.update(
            heartbeat_at=from_us(now_us()),
            queue_depth=sum(reader.depth for reader in self.readers.values()),
            lag_ms=round(self.lag_ms, 3),
            last_event_at=from_us(self.last_event_us),
            connected={vhost: reader.connected for vhost, reader in self.readers.items()},
            vhosts=sorted(self.readers) or list(self.config.vhosts),
            problems=self._problem_list(),
            unacked_ranges=self._unacked_ranges(),
        )
        fields.update(extra)
        assert self.session_id is not None  # _start_session comes first
        TapSession.objects.filter(id=self.session_id).update(**fields)

    def _problem_list(self) -> list[str]:
        problems = list(self.problems.values())
        problems += [reader.problem for reader in self.readers.values() if reader.problem]
        return problems

    # --- once a second -----------------------------------------------------------

    def _tick(self) -> None:
        try:
            swept = storage.sweep_timeouts(timeout_s=self.config.timeout_s)
            live.publish_sweep(swept, self.config.timeout_s)
            self._write_session()
        except (OperationalError, InterfaceError) as error:
            self.problems["database"] = f"cannot write: {error}"
            connection.close()
            return
        if not self.stopping.is_set():
            self._sync_readers()

    def _sync_readers(self) -> None:
        wanted = set(self.config.vhosts)
        if ALL_VHOSTS in wanted:
            if time.monotonic() < self._next_scan:
                return
            self._next_scan = time.monotonic() + VHOST_SCAN_S
            try:
                wanted = {vhost["name"] for vhost in self.management().vhosts()}
                self.problems.pop("vhosts", None)
            except BrokerError as error:
                self.problems["vhosts"] = f"cannot list vhosts: {error.message}"
                return
        for vhost in sorted(wanted - set(self.readers)):
            reader = VhostReader(self, vhost)
            self.readers[vhost] = reader
            reader.start()
        for vhost in sorted(set(self.readers) - wanted):
            reader = self.readers.pop(vhost)
            reader.retire.set()
            log.info("vhost %r is gone; the tap stops reading it", vhost)

    # --- gaps ----------------------------------------------------------------------

    def _control(self, control: Control) -> None:
        vhost = control.reader.vhost
        self.counters["dropped"] += control.dropped
        if control.kind == "connected":
            if control.since_us is not None:
                self._gap(
                    vhost, control.since_us, control.at_us, control.dropped, "connection lost"
                )
            elif vhost in self._previous_alive:
                since, reason = self._previous_alive.pop(vhost)
                self._gap(vhost, since, control.at_us, control.dropped, reason)
            elif control.dropped:
                self._gap(vhost, control.at_us, control.at_us, control.dropped, "tap down")
        elif control.kind == "dropped":
            self._overflow(vhost, control)
        elif control.kind == "tracing_off":
            assert control.since_us is not None  # tracing_off: since tracing was last seen on
            self._gap(vhost, control.since_us, control.at_us, 0, control.reason)

    def _gap(self, vhost: str, since_us: int, until_us: int, dropped: int, reason: str) -> None:
        gap = TapGap.objects.create(
            vhost=vhost,
            started_at=from_us(since_us),
            ended_at=from_us(until_us),
            dropped=dropped,
            reason=reason,
        )
        log.warning("gap recorded: %s", gap)

    def _overflow(self, vhost: str, control: Control) -> None:
        """Drops while running: one gap per burst of overflow, extended while it lasts."""
        recent = from_us(control.at_us - int(OVERFLOW_MERGE_S * 1_000_000))
        gap = (
            TapGap.objects.filter(vhost=vhost, reason="tap queue full", ended_at__gte=recent)
            .order_by("-ended_at")
            .first()
        )
        if gap is None:
            self._gap(
                vhost, control.at_us - 1_000_000, control.at_us, control.dropped, "tap queue full"
            )
            return
        gap.ended_at = from_us(control.at_us)
        gap.dropped += control.dropped
        gap.save(update_fields=["ended_at", "dropped"])

    # --- session -----------------------------------------------------------------

    def _start_session(self) -> None:
        now = now_us()
        alive_since = from_us(now - int(ALIVE_S * 1_000_000))
        others = list(TapSession.objects.order_by("-heartbeat_at")[:200])
        running: set[str] = set()
        for other in others:
            if other.ended_at is None and other.heartbeat_at >= alive_since:
                running.update(other.vhosts or ())
        for other in others:
            for vhost in other.vhosts or ():
                if vhost in running or vhost in self._previous_alive:
                    continue
                reason = "tap stopped" if other.end_reason == "stopped" else "tap down"
                last = other.ended_at or other.heartbeat_at
                self._previous_alive[vhost] = (int(last.timestamp() * 1_000_000), reason)
        # Another tap reads these vhosts' queues: what waits there is not backlog.
        self.shared_vhosts = running
        session = TapSession.objects.create(
            pid=self.pid,
            host=socket.gethostname(),
            vhosts=list(self.config.vhosts),
            started_at=from_us(now),
            heartbeat_at=from_us(now),
        )
        self.session_id = session.id
        log.info("tap started (session %s) for vhosts %s", session.id, self.config.vhosts)

    def _finish(self, reason: str) -> None:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(r.acked_at is None for r in self._records):
            time.sleep(0.02)
        self.finished.set()
        for reader in list(self.readers.values()):
            reader.join(5.0)
        # Ranges stay only for batches whose ack never went out.
        leftover = [[r.first_id, r.last_id] for r in self._records if r.acked_at is None]
        try:
            self._write_session(
                ended_at=from_us(now_us()), end_reason=reason[:500], unacked_ranges=leftover
            )
        except DatabaseError:
            log.exception("could not record the end of the tap session")
        log.info(
            "tap stopped: %(received)s received, %(stored)s stored, "
            "%(duplicates)s duplicates, %(dropped)s dropped",
            self.counters,
        )


def _strip(event: Captured, error: Exception) -> None:
    """Keep the event's place in history without what the database refused."""
    event.properties_json = '{"$unstorable": "properties refused by the database"}'
    event.body = b""
    event.body_truncated = event.body_size > 0
    for name in ("node", "user", "connection", "exchange", "routing_key", "queue"):
        value = getattr(event, name)
        setattr(event, name, value.encode("utf-8", "replace").decode("ascii", "replace")[:255])
    log.debug("stripped event after: %s", error)
