"""The tap (docs/architecture.md, The tap): capture apart, then batches indexed exactly once.

Reader threads (tracer/tap/reader.py), one per traced vhost, run its capture
process (the tap queue read, stamped and made durable in a spool, then acked)
and its feeder process (the spool decoded), and queue the decoded events, in
chunks; this writer thread, niced below capture, takes up to `batch_size`
events or what arrived within `batch_ms`, stores them in one transaction
(tracer/store/storage.py) together with each spool's position (SpoolPosition),
and only then lets the spool release them. A crash loses nothing and stores
nothing twice: the next tap goes on from the positions the database holds.

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
from typing import TypeAlias

from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.db.backends.signals import connection_created
from django.db.backends.utils import CursorWrapper

from rabbit.brokers import default_broker
from rabbit.management import ManagementClient
from rabbit.management_http import BrokerError
from tracer.live import publish as live
from tracer.models import SpoolPosition, TapSession
from tracer.store import sql, storage, traced
from tracer.store.sql import table_of
from tracer.tap.config import TapConfig
from tracer.tap.controls import Control
from tracer.tap.decoding import Captured, strip_unstorable
from tracer.tap.gaps import Gaps
from tracer.tap.give_way import IndexingPauses
from tracer.tap.priority import set_thread_niceness
from tracer.tap.reader import Chunk, VhostReader
from tracer.times import from_us, now_us

log = logging.getLogger("tracer.tap")

ALL_VHOSTS = "*"
TICK_S = 1.0
VHOST_SCAN_S = 10.0
PAUSED_WAIT_S = 0.1  # how often a paused writer looks whether indexing resumed
ALIVE_S = 10.0  # a session whose heartbeat is older than this is not running
# Longest pause between tries of a batch the database refuses: with a try's own
# wait (PostgreSQL's lock_timeout, 5 s), the session's heartbeat stays fresher
# than ALIVE_S while the database is away.
STORE_RETRY_MAX_S = 2.0


# What the writer takes from its inbox: a reader's news, or a chunk of its events.
InboxItem: TypeAlias = "Control | Chunk"


class Tap:
    def __init__(self, config: TapConfig) -> None:
        self.config = config
        self.pid = os.getpid()
        # Control, or (reader, spooled, [(spool sequence number, event)])
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
        self.gaps = Gaps(self.problems)  # TapGap rows, kept until the database takes them
        self._management: ManagementClient | None = None
        self._next_scan = 0.0
        self._previous_alive: dict[str, tuple[int, str]] = {}  # vhost -> (since µs, reason)
        self.shared_vhosts: set[str] = set()
        self._positions: dict[str, int] = {}  # spool id -> position, in the batch being stored
        self._full_since: dict[str, int] = {}  # vhost -> when its spool became full
        self._spool: tuple[int, int, float] = (0, 0, 0.0)  # bytes, frames, index lag (s)
        # Indexing paused while the machine is busy (tracer/tap/give_way.py).
        self.pauses = IndexingPauses(
            config.index_pause_max_s, lambda: self.readers.values(), lambda: self._spool[2]
        )
        # Readers start from this thread, which is not niced: their capture
        # processes inherit its priority, not the writer's.
        self._launches: queue.SimpleQueue[VhostReader | None] = queue.SimpleQueue()

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
        launcher = threading.Thread(target=self._launcher, name="tap-launcher", daemon=True)
        launcher.start()
        self.pauses.start()  # before the writer's niceness: its thread keeps the tap's
        reason = "stopped"
        try:
            self._sync_readers()
            set_thread_niceness(os.getpriority(os.PRIO_PROCESS, 0) + self.config.index_niceness)
            self._loop()
        except BaseException as error:
            reason = f"failed: {type(error).__name__}: {error}"
            log.exception("the tap failed")
            raise
        finally:
            self.stopping.set()
            self.pauses.stop()
            self._launches.put(None)
            self._finish(reason)

    def _launcher(self) -> None:
        while (reader := self._launches.get()) is not None:
            reader.start()

    def _loop(self) -> None:
        next_tick = time.monotonic() + TICK_S
        while True:
            # Paused, what the feeders sent before waits decoded in the inbox.
            paused = self.pauses.paused and not self.stopping.is_set()
            items = [] if paused else self._collect()
            if paused:
                time.sleep(PAUSED_WAIT_S)
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
            reader, spooled, pairs = last
            keep = len(pairs) - (count - limit)
            items[-1] = (reader, spooled, pairs[:keep])
            self._carry = (reader, spooled, pairs[keep:])
        return items

    def _handle(self, items: list[InboxItem]) -> None:
        events: list[Captured] = []
        # (reader, spooled) -> the highest spool sequence number in this batch
        highest: dict[tuple[VhostReader, bool], int] = {}
        for item in items:
            if isinstance(item, Control):
                self._control(item)
                continue
            reader, spooled, pairs = item
            if not pairs:
                continue
            if spooled and pairs[0][0] <= reader.position:
                # Sent again by a feeder started after a crash of its own: stored already.
                pairs = [pair for pair in pairs if pair[0] > reader.position]
                if not pairs:
                    continue
            events.extend([event for _, event in pairs])
            key = (reader, spooled)
            highest[key] = max(highest.get(key, 0), pairs[-1][0])
        if not events:
            return
        first_arrival = min(event.captured_us for event in events)
        self._positions = {
            reader.spool_id: seq for (reader, spooled), seq in highest.items() if spooled
        }
        result = self._store(events)
        if self.gaps.due:
            self.gaps.write()  # the database is back
        self.lag_ms = max(0.0, (now_us() - first_arrival) / 1000.0)
        self.batches_done += 1
        if self.config.crash_after_batches and self.batches_done >= self.config.crash_after_batches:
            os._exit(70)  # committed, the spool not yet told: the fault the tests need
        for (reader, spooled), seq in highest.items():
            reader.stored(spooled, seq)
        live.publish_batch(result, events)

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
                self._report_while_refused()
                if self.stopping.is_set():
                    # Half the grace for retrying a batch the database refuses, once asked to stop.
                    deadline = deadline or time.monotonic() + self.config.stop_grace_s / 2
                    if time.monotonic() > deadline:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, STORE_RETRY_MAX_S)
            except (DatabaseError, ValueError, TypeError, OverflowError) as error:
                log.warning("a batch failed (%s); storing its events one by one", error)
                return self._store_one_by_one(events)

    def _report_while_refused(self) -> None:
        """A batch refused (a table locked, the database away): the session row
        may still take a write, so that /api/tap/status shows the tap alive, why
        it cannot store and how far behind indexing falls."""
        self._spool_figures(expire=False)
        try:
            self._write_session()
        except (OperationalError, InterfaceError):
            connection.close()

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
                strip_unstorable(event)
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
        for name in ("received", "stored", "backlog"):
            self.counters[name] += getattr(result, name)
        if result.last_event_us:
            self.last_event_us = max(self.last_event_us or 0, result.last_event_us)
        # Each spool's position commits with the rows read from it: exactly once.
        positions, self._positions = self._positions, {}
        if positions:
            table = table_of(SpoolPosition)
            cursor.executemany(
                f"INSERT INTO {table} (spool, position, updated_at) VALUES (%s, %s, %s) "  # noqa: S608
                "ON CONFLICT (spool) DO UPDATE SET position = excluded.position, "
                "updated_at = excluded.updated_at",
                [(spool, seq, from_us(now_us())) for spool, seq in positions.items()],
            )
        self._write_session()

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
            unacked_ranges=[],
            spool_bytes=self._spool[0],
            spool_frames=self._spool[1],
            index_lag_s=round(self._spool[2], 3),
            index_paused=self.pauses.decision.paused,
            index_paused_s=round(self.pauses.decision.paused_s, 3),
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
            self.gaps.write()
            self._spool_figures()  # may record a gap: a write
            swept = storage.sweep_timeouts(timeout_s=self.config.timeout_s)
            live.publish_sweep(swept, self.config.timeout_s)
            live.tell_indexing(self.pauses.paused, self._spool[2])
            self._write_session()
        except (OperationalError, InterfaceError) as error:
            self.problems["database"] = f"cannot write: {error}"
            connection.close()
            return
        if not self.stopping.is_set():
            self._sync_readers()

    def _wanted(self) -> set[str]:
        """The vhosts to read: those named on the command line, else the choice
        stored in the console (WARREN_TRACE_VHOSTS seeds it), read every tick."""
        if not self.config.follow_choice:
            return set(self.config.vhosts)
        try:
            wanted = traced.wanted_vhosts(self.config.vhosts)
            self.problems.pop("choice", None)
        except (OperationalError, InterfaceError) as error:
            self.problems["choice"] = f"cannot read the traced vhosts: {error}"
            return set(self.readers)  # as they are, until the database answers
        return wanted

    def _sync_readers(self) -> None:
        wanted = self._wanted()
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
            self._launches.put(reader)
        for vhost in sorted(set(self.readers) - wanted):
            reader = self.readers.pop(vhost)
            reader.retire.set()
            log.info("vhost %r is gone or no longer traced; the tap stops reading it", vhost)

    # --- gaps ----------------------------------------------------------------------

    def _control(self, control: Control) -> None:
        vhost = control.reader.vhost
        self.counters["dropped"] += control.dropped
        if control.kind == "connected":
            if vhost in self._full_since:
                # The capture whose spool was full is gone: its gap ends here
                # (the new one says so again if the spool still is).
                self._gap(vhost, self._full_since.pop(vhost), control.at_us, 0, "spool full")
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
            self.gaps.overflow(vhost, control.at_us, control.dropped)
        elif control.kind == "tracing_off":
            assert control.since_us is not None  # tracing_off: since tracing was last seen on
            self._gap(vhost, control.since_us, control.at_us, 0, control.reason)
        elif control.kind == "duplicates":
            self.counters["duplicates"] += control.dropped
        elif control.kind == "spool_full":
            self._full_since[vhost] = control.since_us or control.at_us
            log.warning(
                "vhost %r: the spool is full, capture holds its acks: %s", vhost, control.reason
            )
        elif control.kind == "spool_ok":
            since = self._full_since.pop(vhost, control.since_us or control.at_us)
            self._gap(vhost, since, control.at_us, 0, "spool full")

    def _spool_figures(self, expire: bool = True) -> None:
        """Bytes and frames the spools hold, how far indexing is behind; and
        (`expire`) the age bound: frames older than it go, recorded as a gap."""
        size = frames = 0
        lag = 0.0
        oldest_allowed = now_us() - int(self.config.spool_max_age_s * 1_000_000)
        for vhost, reader in list(self.readers.items()):
            held, count, behind = reader.spool_figures()
            size, frames, lag = size + held, frames + count, max(lag, behind)
            if not expire:
                continue
            expired = reader.expire(oldest_allowed)
            if expired:
                self._gap(vhost, oldest_allowed, oldest_allowed, expired, "spool age bound")
        self._spool = (size, frames, lag)

    def _gap(self, vhost: str, since_us: int, until_us: int, dropped: int, reason: str) -> None:
        self.gaps.record(vhost, since_us, until_us, dropped, reason)

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
        self.finished.set()
        deadline = time.monotonic() + max(1.0, self.config.stop_grace_s - 1.5)
        for reader in list(self.readers.values()):
            reader.join(max(0.0, deadline - time.monotonic()))
        if not self.gaps.write():
            self.gaps.lost()
        try:
            self._write_session(ended_at=from_us(now_us()), end_reason=reason[:500])
        except DatabaseError:
            log.exception("could not record the end of the tap session")
        finally:
            connection.close()
        log.info(
            "tap stopped: %(received)s received, %(stored)s stored, "
            "%(duplicates)s duplicates, %(dropped)s dropped",
            self.counters,
        )
