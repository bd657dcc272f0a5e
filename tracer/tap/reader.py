"""One traced vhost: its bounded tap queue, read by a feeder process, on a thread of its own.

The reader declares the tap queue (durable, `x-max-length`, `x-overflow:
drop-head`) bound to `amq.rabbitmq.trace` with `#`, switches tracing on once the
binding exists, and starts a feeder process (tracer/tap/feed.py) that consumes
the queue with a prefetch sized for batching, stamps each frame on arrival and
decodes it once. The reader hands the decoded events to the writer in order;
the writer acks (multiple) after its commit, through `ack()` and the feeder.
The reader's own pika connection declares, purges and checks; it never
consumes.

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
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypedDict, Unpack

from rabbit import amqp, cluster
from rabbit.field_tables import AMQPRawError
from rabbit.management_http import BrokerError
from tracer.tap import feed as tap_feed
from tracer.tap import rescue
from tracer.tap.decoding import Captured
from tracer.times import now_us

if TYPE_CHECKING:
    from tracer.tap.config import TapConfig
    from tracer.tap.process import Tap

log = logging.getLogger("tracer.tap")

TRACE_EXCHANGE = "amq.rabbitmq.trace"
DROPPED_QUEUE_MAX_LENGTH = 100_000
CHECK_EVERY_S = 1.0
TRACING_CHECK_EVERY_S = 5.0
BACKOFF_S = (0.5, 1, 2, 4, 8)
RETIRE_GRACE_S = 5.0
CANCEL_WAIT_S = 2.0  # a cancel-ok takes milliseconds; stopping fits WARREN_TAP_STOP_GRACE
FEEDER_START_S = 20.0
FEEDER_STOP_S = 1.0
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def tap_queue_arguments(max_length: int, max_bytes: int, drops_exchange: str) -> dict[str, Any]:
    return {
        "x-max-length": max_length,
        "x-max-length-bytes": max_bytes,
        "x-overflow": "drop-head",
        "x-dead-letter-exchange": drops_exchange,
    }


def declare_tap_queue(channel: Any, queue_name: str, max_length: int, max_bytes: int) -> Any:
    """The bounded tap queue bound to the trace exchange, and its drop counter.

    Bounded in messages and in bytes: a Warren that is away for long can never
    fill the broker's memory or disk; the oldest events go first (to the drop
    counter). `channel`: a pika channel (rabbit.amqp); returns its Queue.DeclareOk
    frame. Raises amqp.ChannelClosedByBroker (406) when the queue exists with
    other bounds: see VhostReader._declare."""
    drops_exchange = f"{queue_name}.drops"
    dropped_queue = f"{queue_name}.dropped"
    channel.exchange_declare(drops_exchange, "fanout", durable=True)
    channel.queue_declare(
        dropped_queue,
        durable=True,
        arguments={"x-max-length": DROPPED_QUEUE_MAX_LENGTH, "x-overflow": "drop-head"},
    )
    channel.queue_bind(dropped_queue, drops_exchange)
    declared = channel.queue_declare(
        queue_name,
        durable=True,
        arguments=tap_queue_arguments(max_length, max_bytes, drops_exchange),
    )
    channel.queue_bind(queue_name, TRACE_EXCHANGE, "#")
    return declared


class ConnectionLost(AMQPRawError):
    """The feeder's connection ended, leaving `unacked` deliveries to come back first."""

    def __init__(self, reason: str, unacked: int = 0) -> None:
        super().__init__(reason)
        self.unacked = unacked

    @property
    def broker_failed_to_deliver(self) -> bool:
        return "541" in str(self)


ControlKind: TypeAlias = Literal["connected", "dropped", "tracing_off"]


class ControlFields(TypedDict, total=False):
    since_us: int | None  # connected: when the connection was lost; tracing_off: seen on
    dropped: int
    depth: int
    reason: str


class Control:
    """A reader's news for the writer, queued in order with its events."""

    __slots__ = ("kind", "reader", "at_us", "since_us", "dropped", "depth", "reason")

    kind: ControlKind
    reader: "VhostReader"
    at_us: int
    since_us: int | None
    dropped: int
    depth: int
    reason: str

    def __init__(
        self, kind: ControlKind, reader: "VhostReader", **fields: Unpack[ControlFields]
    ) -> None:
        self.kind = kind
        self.reader = reader
        self.at_us = now_us()
        self.since_us = fields.get("since_us")
        self.dropped = fields.get("dropped", 0)
        self.depth = fields.get("depth", 0)
        self.reason = fields.get("reason", "")


# A reader's events for the writer: (reader, connection generation, pairs); the
# generation is None for an event rescued through the management API.
Chunk: TypeAlias = "tuple[VhostReader, int | None, list[tap_feed.Pair]]"
# The tap's end of a feeder's pipe.
TapEnd: TypeAlias = "Connection[tap_feed.ToFeeder, tap_feed.Received]"  # generic to mypy only


class VhostReader(threading.Thread):
    def __init__(self, tap: "Tap", vhost: str) -> None:
        super().__init__(name=f"tap-reader {vhost}", daemon=True)
        self.tap = tap
        self.vhost = vhost
        self.queue_name = tap.config.queue
        self.dropped_queue = f"{self.queue_name}.dropped"
        self.drops_exchange = f"{self.queue_name}.drops"
        self.generation = 0
        self.connected = False
        self.depth = 0
        self.dropped_total = 0
        self.problem = ""
        self.retire = threading.Event()  # the vhost went away, or the tap stops
        self.cancelled = threading.Event()  # no more deliveries will come
        self._connection: Any = None  # pika's (rabbit.amqp), None while not connected
        self._channel: Any = None  # pika's, on that connection
        self._feeder: Feeder | None = None
        self._backlog_left = 0
        self._down_since: int | None = None
        self._tracing_checked = 0.0
        self._tracing_seen_on: int | None = None
        self._careful_prefetch: int | None = None  # after a 541: ask for the unacked ones only
        self._careful_passed = False  # ...and they went by without another 541
        self._rescue_committed = threading.Event()
        self.rescued = 0

    # --- thread ------------------------------------------------------------

    def run(self) -> None:
        attempt = 0
        while not self._done():
            try:
                self._session()
                attempt = 0
                if self._careful_passed:
                    self._careful_prefetch, self._careful_passed = None, False
                    self._close()
                    continue  # at once, with the full prefetch
            except (amqp.AMQPError, AMQPRawError, OSError, BrokerError) as error:
                self._lost(error)
                if isinstance(error, ConnectionLost) and error.broker_failed_to_deliver:
                    self._unjam(error.unacked)
            except Exception as error:  # keep reading whatever a bug throws
                log.exception("tap reader for vhost %r failed", self.vhost)
                self._lost(error)
            if self._done():
                break
            delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
            attempt += 1
            self.tap.stopping.wait(delay)
        self.cancelled.set()
        self._close()

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
        feeder, self._feeder = self._feeder, None
        if feeder is not None:
            feeder.close()
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(amqp.AMQPError, OSError):
                connection.close()

    # --- one connection ------------------------------------------------------

    def _session(self) -> None:
        config = self.tap.config
        name = f"warren-tap {socket.gethostname()}:{self.tap.pid}"
        self._connection = amqp.blocking_connection(config.amqp_url, vhost=self.vhost, name=name)
        declared, bounds_problem = self._declare()
        self._ensure_tracing(force=True)
        # What waits in the queue now was traced while no tap was reading
        # (unless another tap process shares the queue and was reading it).
        self.depth = declared.method.message_count
        self._backlog_left = 0 if self.vhost in self.tap.shared_vhosts else self.depth
        dropped = self._purge_dropped()
        prefetch = self._careful_prefetch or config.prefetch
        self._feeder = Feeder(config, self.vhost, name, self.queue_name, prefetch)
        self.generation += 1
        self.connected = True
        self.problem = bounds_problem
        since, self._down_since = self._down_since, None
        self.tap.inbox.put(
            Control("connected", self, since_us=since, dropped=dropped, depth=self.depth)
        )
        self._consume()

    def _declare(self) -> tuple[Any, str]:
        """The tap queue, declared with the configured bounds: (DeclareOk, problem).

        A durable queue keeps the arguments it was first declared with, and the
        broker refuses (406) to declare it with others. Then the queue is used as
        it is, nothing in it lost, and the problem says how to apply the new
        bounds (`manage.py untrace`, then start the tap again)."""
        config = self.tap.config
        assert self._connection is not None
        channel = self._channel = self._connection.channel()
        try:
            return declare_tap_queue(
                channel, self.queue_name, config.max_length, config.max_bytes
            ), ""
        except amqp.ChannelClosedByBroker as error:
            if error.reply_code != 406:
                raise
        channel = self._channel = self._connection.channel()
        declared = channel.queue_declare(self.queue_name, passive=True)
        channel.queue_bind(self.queue_name, TRACE_EXCHANGE, "#")
        problem = (
            f"vhost {self.vhost!r}: the tap queue {self.queue_name!r} keeps the bounds it was "
            f"declared with, not {config.max_length:,} messages and {config.max_bytes:,} bytes: "
            f"stop the tap, run `manage.py untrace {self.vhost}`, then start it again "
            "(what the queue holds is dropped then)"
        )
        log.warning("tap: %s", problem)
        return declared, problem

    def _consume(self) -> None:
        feeder = self._feeder
        assert feeder is not None  # started by _session; only _close, on this thread, ends it
        next_check = time.monotonic() + CHECK_EVERY_S
        consuming = True
        cancelled_at = None
        while True:
            if consuming and self._done():
                feeder.send((tap_feed.CANCEL,))
                consuming = False
                cancelled_at = time.monotonic()
            waited = time.monotonic() - cancelled_at if cancelled_at is not None else 0.0
            if waited > CANCEL_WAIT_S and not self.cancelled.is_set():
                self.cancelled.set()  # the feeder did not confirm: stop waiting for it
            if self.cancelled.is_set() and self.tap.finished.is_set():
                return
            if self._careful_passed:
                return
            # Retired (its vhost is gone): stay a moment for the last acks, then go.
            if (
                cancelled_at is not None
                and not self.tap.stopping.is_set()
                and time.monotonic() - cancelled_at > RETIRE_GRACE_S
            ):
                return
            self._pump(feeder, 0.05)
            self._connection.process_data_events(time_limit=0)
            if consuming and time.monotonic() >= next_check:
                next_check = time.monotonic() + CHECK_EVERY_S
                self._check()

    def _pump(self, feeder: "Feeder", timeout: float) -> None:
        """Events from the feeder process into the writer's inbox, in order."""
        conn = feeder.conn
        pipe = [conn.fileno()]
        try:
            # select() on the pipe itself: Connection.poll() builds a selector per
            # call, which cost the tap's process 8 % of its time between chunks.
            if not select.select(pipe, [], [], timeout)[0]:
                return
            put = self.tap.inbox.put
            generation = self.generation
            while select.select(pipe, [], [], 0)[0]:
                message = conn.recv()
                kind = message[0]
                if kind == tap_feed.EVENTS:
                    pairs: list[tap_feed.Pair] = message[1]
                    if self._backlog_left > 0:
                        for _, event in pairs[: self._backlog_left]:
                            event.backlog = True
                        self._backlog_left -= min(self._backlog_left, len(pairs))
                    put((self, generation, pairs))
                elif kind == tap_feed.CANCELLED:
                    self.cancelled.set()
                elif kind == tap_feed.LOST:
                    raise ConnectionLost(*message[1:])
        except (EOFError, OSError) as error:
            raise AMQPRawError(f"the tap's feeder process ended: {error}") from None

    def _check(self) -> None:
        self.depth = self._channel.queue_declare(self.queue_name, passive=True).method.message_count
        dropped = self._purge_dropped()
        if dropped:
            self.tap.inbox.put(Control("dropped", self, dropped=dropped, depth=self.depth))
        if not self._done():  # stopping: no management API calls to wait for
            self._ensure_tracing()

    def _unjam(self, unacked: int) -> None:
        """After a 541: store and remove the head of the tap queue if it cannot be delivered."""
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
            return
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

    def _store_rescued(self, event: Captured) -> None:
        """Hand one event to the writer and wait for its commit."""
        self._rescue_committed.clear()
        self.tap.inbox.put((self, None, [(0, event)]))  # no delivery tag: generation None
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

    def ack(self, generation: int | None, tag: int, on_done: Callable[[], None]) -> None:
        """Ack everything up to `tag` (after the commit), through the feeder.

        Generation None: a rescued event (not a delivery) is committed."""
        if generation is None:
            self._rescue_committed.set()
            on_done()
            return
        feeder = self._feeder
        if feeder is not None and generation == self.generation:
            feeder.send((tap_feed.ACK, tag))  # a lost ack: the events come back as duplicates
            if self._careful_prefetch and tag > self._careful_prefetch:
                self._careful_passed = True  # no 541 this time: back to the full prefetch
        on_done()


class Feeder:
    """The feeder process of one connection (tracer/tap/feed.py) and its pipe.

    A plain subprocess on one end of a socket pair (multiprocessing's spawn would
    add a resource-tracker process and its memory for nothing); it learns where
    to read from its first message, so no credential shows on a command line.
    """

    def __init__(
        self, config: "TapConfig", vhost: str, name: str, queue_name: str, prefetch: int
    ) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tracer.tap.feed", str(theirs.fileno())],
                cwd=PROJECT_ROOT,
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self.conn: TapEnd = Connection(ours.detach())
        self._lock = threading.Lock()
        settings: tap_feed.FeederConfig = {
            "url": config.amqp_url,
            "vhost": vhost,
            "name": name,
            "queue": queue_name,
            "prefetch": prefetch,
            "body_limit": config.body_limit,
        }
        self.send((tap_feed.CONFIG, settings))
        try:
            if not self.conn.poll(FEEDER_START_S):
                raise AMQPRawError("the tap's feeder process did not start in time")
            answer = self.conn.recv()
        except (EOFError, OSError) as error:
            self.close()
            raise AMQPRawError(f"the tap's feeder process ended: {error}") from None
        except AMQPRawError:
            self.close()
            raise
        if answer[0] != tap_feed.READY:
            self.close()
            raise AMQPRawError(answer[1] if len(answer) > 1 else "feeder failed")

    def send(self, message: tap_feed.ToFeeder) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            self.conn.send(message)

    def close(self) -> None:
        self.send((tap_feed.CLOSE,))
        try:
            self.process.wait(FEEDER_STOP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(FEEDER_STOP_S)
        with contextlib.suppress(OSError):
            self.conn.close()
