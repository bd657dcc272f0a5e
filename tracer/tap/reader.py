"""One traced vhost: its bounded tap queue, captured and indexed, on a thread of its own.

The reader declares the tap queue (durable, `x-max-length`,
`x-max-length-bytes`, `x-overflow: drop-head`) bound to `amq.rabbitmq.trace`
with `#`, switches tracing on once the binding exists, and runs two processes:
capture (tracer/tap/capture.py), one per connection, which consumes the queue,
stamps each message as it arrives, makes it durable in the vhost's spool
(tracer/tap/spool.py) and acks it; and the feeder (tracer/tap/feed.py), one per
spool, niced, which decodes what the spool holds from the position the database
says was stored. The reader hands the decoded events to the writer in order;
the writer stores them with the spool position in one transaction, then says
so (`stored()`), and only then does the spool let them go. The reader's own pika
connection declares, purges and checks; it never consumes.

A trace message the broker cannot deliver (its routing key too long for
AMQP, see tracer/tap/rescue.py) closes the feeder's connection with 541: the
reader then takes it from the head of the queue through the management API.
It is only at the head once the deliveries that were unacked when the
connection closed (they come back first) are acked, so the next connection
asks for exactly those before the reader looks again.

Drops: the tap queue dead-letters what drop-head throws away into a small
counter queue (`<tap queue>.dropped`, itself bounded). Dead-lettering is not
traced and purge answers with a count, so a purge every second tells exactly
how many events were lost — up to that queue's bound while the tap is away.
"""

import contextlib
import logging
import select
import socket
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any, TypeAlias

from django.db import connection

from rabbit import amqp, cluster
from rabbit.field_tables import AMQPRawError
from rabbit.management_http import BrokerError
from tracer.models import SpoolPosition
from tracer.tap import capture_messages, priority, rescue
from tracer.tap import feed as tap_feed
from tracer.tap.children import Child, ChildRefused
from tracer.tap.controls import ConnectionLost, Control
from tracer.tap.decoding import Captured
from tracer.tap.feeder_link import FeederLink
from tracer.tap.queue import open_tap_queue
from tracer.tap.spool import Spool, SpoolSlot
from tracer.times import now_us

if TYPE_CHECKING:
    from tracer.tap.process import Tap

log = logging.getLogger("tracer.tap")

CHECK_EVERY_S = 1.0
TRACING_CHECK_EVERY_S = 5.0
BACKOFF_S = (0.5, 1, 2, 4, 8)
RETIRE_GRACE_S = 5.0
# Longest wait for capture's or the feeder's news: what else this thread does
# (stopping, the queue's checks, the management connection's heartbeats) can wait this long.
CHILDREN_WAIT_S = 0.1
CANCEL_WAIT_S = 2.0  # a cancel-ok takes milliseconds; stopping fits WARREN_TAP_STOP_GRACE


# A reader's events for the writer: (reader, spooled, pairs of (spool sequence
# number, event)); spooled is False for an event rescued through the management
# API (no sequence number).
Chunk: TypeAlias = "tuple[VhostReader, bool, list[tap_feed.Pair]]"


class VhostReader(threading.Thread):
    def __init__(self, tap: "Tap", vhost: str) -> None:
        super().__init__(name=f"tap-reader {vhost}", daemon=True)
        self.tap = tap
        self.vhost = vhost
        self.queue_name = tap.config.queue
        self.dropped_queue = f"{self.queue_name}.dropped"
        self.drops_exchange = f"{self.queue_name}.drops"
        self.connected = False
        self.depth = 0
        self.dropped_total = 0
        self.problem = ""
        self.retire = threading.Event()  # the vhost went away, or the tap stops
        self.cancelled = threading.Event()  # no more deliveries will come
        self._connection: Any = None  # pika's (rabbit.amqp), None while not connected
        self._channel: Any = None  # pika's, on that connection
        self._capture: Child | None = None
        self._feeder = FeederLink(vhost)
        self._indexing_paused = False  # the machine is busy: tracer/tap/give_way.py
        self.slot: SpoolSlot | None = None
        self.spool: Spool | None = None  # for the writer's figures (bytes held, lag)
        self.spool_id = ""
        self.position = 0  # the last spool sequence number the database holds
        self._queued = 0  # the last one handed to the writer
        self._down_since: int | None = None
        self._tracing_checked = 0.0
        self._tracing_seen_on: int | None = None
        self._careful_prefetch: int | None = None  # after a 541: ask for the unacked ones only
        self._careful_passed = False  # ...and they went by without another 541
        self._rescue_committed = threading.Event()
        self.rescued = 0
        self._sessions = 0  # captures started

    # --- thread ------------------------------------------------------------

    def run(self) -> None:
        attempt = 0
        while not self._done():  # a full disk or an unwritable folder: said, tried again
            try:
                self._open_spool()
                break
            except Exception as error:  # noqa: BLE001 - said on the status page
                if self.spool is not None:
                    self.spool.close()
                    self.spool = None
                if self.slot is not None:
                    self.slot.release()  # the next try takes the same file again
                    self.slot = None
                if not attempt:
                    log.exception("vhost %r: cannot open its spool", self.vhost)
                self.problem = f"vhost {self.vhost!r}: cannot open its spool: {error}"
            self.tap.stopping.wait(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
            attempt += 1
        if self.spool is None:
            self.cancelled.set()
            return
        self.problem = ""
        attempt = 0
        while not self._done():
            try:
                self._ensure_feeder()
                self._session()
                attempt = 0
                if self._careful_passed:
                    self._careful_prefetch, self._careful_passed = None, False
                    self._close()
                    continue  # at once, with the full prefetch
            except (amqp.AMQPError, AMQPRawError, OSError, BrokerError) as error:
                self._lost(error)
                if (
                    isinstance(error, ConnectionLost)
                    and error.broker_failed_to_deliver
                    and self._unjam(error.unacked)
                ):
                    # Its cause known and dealt with: the next connection goes on
                    # without the growing backoff a failure earns (a 541 is
                    # followed by a second once the deliveries put back are
                    # acked, by more when a connection consumes before the
                    # broker has put them back; each would wait longer).
                    attempt = 0
            except Exception as error:  # keep reading whatever a bug throws
                log.exception("tap reader for vhost %r failed", self.vhost)
                self._lost(error)
            if self._done():
                break
            delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
            attempt += 1
            self.tap.stopping.wait(delay)
        self.cancelled.set()
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.send((capture_messages.CLOSE,))  # it commits what it holds, then ends
        while not self.tap.finished.wait(0.05):
            self._pump_feeder(0.0)  # the writer's last commits say STORED to the feeder
        self._feeder.tell((tap_feed.CLOSE,))
        if capture is not None:
            capture.close(None)
        self._close()
        self._close_feeder()

    def _open_spool(self) -> None:
        config = self.tap.config
        self.slot = SpoolSlot(config.spool_dir, self.vhost)
        self.spool = Spool(self.slot.path, config.spool_max)
        self.spool_id = self.spool.spool_id
        try:
            row = SpoolPosition.objects.filter(spool=self.spool_id).first()
        finally:
            connection.close()  # this thread's; the writer has its own
        self.position = self._queued = row.position if row is not None else 0

    def _done(self) -> bool:
        return self.tap.stopping.is_set() or self.retire.is_set()

    def _lost(self, error: Exception) -> None:
        message = str(error) or type(error).__name__
        self.problem = f"vhost {self.vhost!r}: {message}"
        if self.connected or self._down_since is None:
            log.warning("tap lost vhost %r: %s", self.vhost, message)
            self._down_since = self._down_since or now_us()
        self.connected = False
        self._close()

    def _close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.close(capture_messages.CLOSE)
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(amqp.AMQPError, OSError):
                connection.close()

    def _close_feeder(self) -> None:
        self._feeder.stop()
        spool, self.spool = self.spool, None
        if spool is not None:
            spool.close()
        if self.slot is not None:
            self.slot.release()

    # --- the feeder: the spool decoded, from where the database stands ---------

    def _ensure_feeder(self) -> None:
        assert self.slot is not None  # opened first, in run()
        config = self.tap.config
        self._feeder.ensure(
            {
                "spool_path": str(self.slot.path),
                "spool_max": config.spool_max,
                # Whatever was handed to the writer will be stored: go on after it.
                "position": max(self._queued, self.position),
                "stored": self.position,
                "body_limit": config.body_limit,
                "vhost": self.vhost,
                "niceness": config.index_niceness,
                "paused": self._indexing_paused,
            }
        )

    def pause_indexing(self, paused: bool) -> None:
        """Pause or resume the feeder's decoding (the writer's thread; thread-safe)."""
        self._indexing_paused = paused
        self._feeder.tell((tap_feed.PAUSE, paused))

    def feeder_pid(self) -> int | None:
        """The feeder's process id: its CPU is indexing's (tracer/tap/give_way.py)."""
        return self._feeder.pid()

    # --- one connection ------------------------------------------------------

    def _session(self) -> None:
        config = self.tap.config
        name = f"warren-tap {socket.gethostname()}:{self.tap.pid}"
        self._connection = amqp.blocking_connection(config.amqp_url, vhost=self.vhost, name=name)
        self._channel, declared, bounds_problem = open_tap_queue(
            self._connection, self.vhost, self.queue_name, config.max_length, config.max_bytes
        )
        if bounds_problem:
            log.warning("tap: %s", bounds_problem)
        # What waits in the queue now was traced while no tap was reading
        # (unless another tap process shares the queue and was reading it).
        self.depth = declared.method.message_count
        backlog = 0 if self.vhost in self.tap.shared_vhosts else self.depth
        dropped = self._purge_dropped()
        assert self.slot is not None
        settings: capture_messages.CaptureConfig = {
            "url": config.amqp_url,
            "vhost": self.vhost,
            "name": name,
            "queue": self.queue_name,
            "prefetch": self._careful_prefetch or config.prefetch,
            "spool_path": str(self.slot.path),
            "spool_max": config.spool_max,
            "backlog": backlog,
            # The fault the tests need, in the first capture only.
            "crash_after_commits": 0 if self._sessions else config.crash_capture_after,
            "ack_together": bool(self._careful_prefetch),
            "committer_niceness": priority.background_niceness(),
        }
        self._sessions += 1
        try:
            self._capture = Child(
                "tracer.tap.capture",
                (capture_messages.CONFIG, settings),
                on_start=priority.start_unniced,
            )
        except ChildRefused as refused:
            if refused.answer[0] == capture_messages.LOST:
                # Lost while consuming, maybe on a message the broker cannot
                # deliver (541): the same news as a loss after the start.
                raise ConnectionLost(*refused.answer[1:]) from None
            raise
        if self._sessions == 1:
            log.info("vhost %r: capture stamps %s", self.vhost, self._capture.ready[2])
        # Only now that capture consumes: switched on before, what was traced while
        # capture started would wait in the queue, unmarked, and be stamped all at
        # once when read (a vhost first traced under load showed 50 ms calls as 0 ms).
        self._ensure_tracing(force=True)
        self.connected = True
        self.problem = bounds_problem
        since, self._down_since = self._down_since, None
        self.tap.inbox.put(
            Control("connected", self, since_us=since, dropped=dropped, depth=self.depth)
        )
        self._consume()

    def _consume(self) -> None:
        capture = self._capture
        assert capture is not None  # started by _session; only _close, on this thread, ends it
        next_check = time.monotonic() + CHECK_EVERY_S
        consuming = True
        cancelled_at = None
        while True:
            if consuming and self._done():
                capture.send((capture_messages.CANCEL,))
                consuming = False
                cancelled_at = time.monotonic()
            waited = time.monotonic() - cancelled_at if cancelled_at is not None else 0.0
            if waited > CANCEL_WAIT_S and not self.cancelled.is_set():
                self.cancelled.set()  # capture did not confirm: stop waiting for it
            if self.cancelled.is_set() and self.tap.finished.is_set():
                return
            if self._careful_passed:
                return
            # Retired (its vhost is gone): stay a moment for the last commits, then go.
            if (
                cancelled_at is not None
                and not self.tap.stopping.is_set()
                and time.monotonic() - cancelled_at > RETIRE_GRACE_S
            ):
                return
            self._wait_for_children(capture, CHILDREN_WAIT_S)
            self._pump_capture(capture)
            self._pump_feeder(0.0)
            self._connection.process_data_events(time_limit=0)
            if consuming and time.monotonic() >= next_check:
                next_check = time.monotonic() + CHECK_EVERY_S
                self._check()
                self._ensure_feeder()

    def _wait_for_children(self, capture: "Child", timeout: float) -> None:
        """Until capture or the feeder has news, or `timeout` passed."""
        pipes = [capture.conn.fileno()]
        feeder = self._feeder.fileno()
        if feeder is not None:
            pipes.append(feeder)
        with contextlib.suppress(OSError, ValueError):  # a pipe closed: the pumps find out
            select.select(pipes, [], [], timeout)

    def _pump_capture(self, capture: "Child") -> None:
        """Capture's news: what it spooled, a full spool, its end."""
        conn = capture.conn
        try:
            while select.select([conn.fileno()], [], [], 0)[0]:
                message = conn.recv()
                kind = message[0]
                if kind == capture_messages.SPOOLED:
                    last, _count, duplicates = message[1:]
                    self._feeder.tell((tap_feed.SPOOLED, last))  # more to decode
                    if duplicates:
                        self.tap.inbox.put(Control("duplicates", self, dropped=duplicates))
                    if self._careful_prefetch:
                        self._careful_passed = True  # no 541 this time: back to the full prefetch
                elif kind == capture_messages.SPOOL_FULL:
                    since, reason = message[1:]
                    self.problem = f"vhost {self.vhost!r}: the spool is full ({reason})"
                    log.warning(
                        "%s; capture holds its acks, the tap queue's bound takes over", self.problem
                    )
                    self.tap.inbox.put(Control("spool_full", self, since_us=since, reason=reason))
                elif kind == capture_messages.SPOOL_OK:
                    since, _until = message[1:]
                    if self.problem.startswith(f"vhost {self.vhost!r}: the spool is full"):
                        self.problem = ""
                    log.info("vhost %r: the spool has room again; capture acks", self.vhost)
                    self.tap.inbox.put(Control("spool_ok", self, since_us=since))
                elif kind == capture_messages.CANCELLED:
                    self.cancelled.set()
                elif kind == capture_messages.LOST:
                    raise ConnectionLost(*message[1:])
        except (EOFError, OSError) as error:
            raise AMQPRawError(f"the tap's capture process ended: {error}") from None

    def _pump_feeder(self, timeout: float) -> None:
        """Decoded events from the feeder into the writer's inbox, in order."""
        for pairs in self._feeder.take(timeout):
            self._queued = pairs[-1][0]
            self.tap.inbox.put((self, True, pairs))

    def _check(self) -> None:
        self.depth = self._channel.queue_declare(self.queue_name, passive=True).method.message_count
        dropped = self._purge_dropped()
        if dropped:
            self.tap.inbox.put(Control("dropped", self, dropped=dropped, depth=self.depth))
        if not self._done():  # stopping: no management API calls to wait for
            self._ensure_tracing()

    def _unjam(self, unacked: int) -> bool:
        """After a 541: store and remove the head of the tap queue if it cannot be
        delivered, else ask the next connection for the unacked ones only; False
        when neither could be done (the management API failed)."""
        try:
            taken = rescue.rescue_head(
                self.tap.management(),
                self.vhost,
                self.queue_name,
                self.tap.config.body_limit,
                self._store_rescued,
                now_us,
            )
        except Exception as error:  # noqa: BLE001 - the reader thread must live on: retried next time
            if not isinstance(error, BrokerError | AMQPRawError):
                log.exception("vhost %r: taking an undeliverable trace message failed", self.vhost)
            self.problem = f"vhost {self.vhost!r}: cannot take an undeliverable message: {error}"
            return False
        if taken:
            self.rescued += taken
            self._careful_prefetch = None
            log.warning(
                "vhost %r: took a trace message the broker cannot deliver (a routing key "
                "over 255 bytes) from the tap queue through the management API",
                self.vhost,
            )
        else:
            # The message the broker choked on waits behind the unacked deliveries.
            self._careful_prefetch = max(1, unacked)
            log.info(
                "vhost %r: the broker could not deliver a trace message (541); the %d "
                "deliveries it puts back come first, and the next connection asks for them only",
                self.vhost,
                unacked,
            )
        return True

    def _store_rescued(self, event: Captured) -> None:
        """Hand one event to the writer and wait for its commit."""
        self._rescue_committed.clear()
        self.tap.inbox.put((self, False, [(0, event)]))  # not spooled: no sequence number
        while not self._rescue_committed.wait(0.5):
            if self.tap.stopping.is_set():
                raise AMQPRawError("the tap stopped before storing a rescued event")

    def _purge_dropped(self) -> int:
        count: int = self._channel.queue_purge(self.dropped_queue).method.message_count
        self.dropped_total += count
        return count

    def _ensure_tracing(self, force: bool = False) -> None:
        """Tracing is switched off by a broker restart (or by someone): switch it on."""
        if not force and time.monotonic() - self._tracing_checked < TRACING_CHECK_EVERY_S:
            return
        self._tracing_checked = time.monotonic()
        try:
            # On every node of a cluster: the switch is per node (rabbit.cluster).
            tracing = cluster.tracing_was_on_everywhere(self.tap.management(), self.vhost)
        except BrokerError as error:
            # Consuming goes on: tracing may well be on; say what we cannot check.
            self.problem = f"vhost {self.vhost!r}: cannot check tracing: {error.message}"
            return
        # While connecting, a gap is recorded for the lost connection already.
        if not tracing and self.connected and self._tracing_seen_on is not None:
            self.tap.inbox.put(
                Control(
                    "tracing_off", self, since_us=self._tracing_seen_on, reason="tracing was off"
                )
            )
        self._tracing_seen_on = now_us()
        if self.problem.startswith(f"vhost {self.vhost!r}: cannot check"):
            self.problem = ""

    # --- called from the writer thread -----------------------------------------

    def stored(self, spooled: bool, upto: int) -> None:
        """The writer committed this reader's events up to spool number `upto`
        (with the position): the spool may let them go. Not spooled: a rescued
        event is committed."""
        if not spooled:
            self._rescue_committed.set()
            return
        self.position = max(self.position, upto)
        self._feeder.tell((tap_feed.STORED, upto))

    def expire(self, older_than_us: int) -> int:
        """Drop spooled frames that arrived before `older_than_us` (the age bound)."""
        spool = self.spool
        if spool is None:
            return 0
        try:
            return spool.expire(older_than_us)
        except sqlite3.Error:
            return 0

    def spool_figures(self) -> tuple[int, int, float]:
        """(bytes, frames) the spool holds, and how far behind indexing is (s)."""
        spool = self.spool
        if spool is None:
            return 0, 0, 0.0
        try:
            size, frames = spool.held()
            waiting = spool.arrived_after(self.position)
        except sqlite3.Error:
            return 0, 0, 0.0
        lag = 0.0 if waiting is None else max(0.0, (now_us() - waiting) / 1e6)
        return size, frames, lag
