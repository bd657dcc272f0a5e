"""Capture: one process per traced vhost and connection, reading the tap queue as
fast as the broker sends, stamping each message, making it durable, then acking.

Nothing else happens in this loop: no header table is decoded, nothing is
paired, no Django and no database but the spool (tracer/tap/spool.py). Each
message's stamp is the kernel's arrival time of its own last bytes: from a
packet socket watching the connection where allowed (root; then capture reads
in bulk, every GATHER_S: TraceConsumer.read_gathered), else by reading each
message on its own as it comes (TraceConsumer.read_each). What was read is
appended to the spool in one durable commit at most every COMMIT_EVERY_S (or
when a chunk is full), and only then acked (multiple). Indexing
(tracer/tap/feed.py and the tap's writer) reads the spool at its own pace, at a
lower priority.

A capture that dies between its commit and its ack, or whose ack was still in
the socket when the connection died, leaves frames the broker delivers again,
flagged redelivered. Each ack is followed by a Basic.Qos
whose answer proves the broker took it (TraceConsumer.ack); the spool keeps
every frame whose ack is not proven so (`Spool.unconfirmed`), and
the next capture drops the redeliveries that match one of them byte for byte,
counting them as duplicates, so each trace message is spooled once.

When the spool is full (WARREN_SPOOL_MAX) or its disk is, capture keeps what
it read in memory (at most the prefetch), acks nothing and tries again: the
broker's bounded tap queue holds the rest, dropping its oldest when full, and
the tap records the gap. The process ends when its pipe to the tap closes.
"""

import contextlib
import os
import select
import signal
import sqlite3
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from typing import Final

from rabbit.delivery import Delivery
from rabbit.field_tables import AMQPRawError
from rabbit.raw import TraceConsumer
from tracer.tap.capture_messages import (
    CANCEL,
    CANCELLED,
    CLOSE,
    CONFIG,
    LOST,
    READY,
    SPOOL_FULL,
    SPOOL_OK,
    SPOOLED,
    CaptureEnd,
    FromCapture,
)
from tracer.tap.copies import RedeliveredCopies
from tracer.tap.priority import raise_priority, set_thread_niceness
from tracer.tap.spool import Spool, SpooledFrame, SpoolFull
from tracer.times import now_us

CHUNK = 2000  # most frames in one commit
# After a 541, how long capture waits for all the deliveries it asked for to
# ack them together (they wait in the queue: they come at once); fewer came
# when some were acked after all.
HOLD_TOGETHER_S: Final = 5.0
# Fewest seconds between two commits, unless a chunk is full. A commit costs an
# fsync, an ack and its proof (two methods the broker handles) and a wake-up of
# the indexer, whose batches it sizes; one per read, at a few thousand events a
# second, cost the traffic more than the broker's own tracing, and one every
# 100 ms instead of every 25 ms took a fifth off capture's and the indexer's
# CPU a call under load (`bench overhead`). A stamp is taken at reading, so
# waiting here moves no stamp; it delays durability, the ack and the live
# pages by at most this, well within the prefetch (16,000 by default).
COMMIT_EVERY_S: Final = 0.1
# Read no more while this much waits for the spool (a full one): the prefetch is
# a count, and RabbitMQ ignores a prefetch in bytes.
HOLD_BYTES: Final = 64 * 1024**2
RETRY_FULL_S = 0.1
IDLE_WAIT_S = 0.05
# How late a stamp may be is an upper bound (the time since the socket was
# last found empty); below this it is recorded as 0: the wire test measures
# the actual error at a few microseconds there (tests/tracer/test_wire_accuracy.py).
STAMP_SLACK_US = 500
# With packet stamps, how long capture lets packets gather after a read before
# it looks again: a wake-up per packet, under load, cost more CPU than all the
# rest of capture (`bench overhead` prints capture's CPU a call); stamps do not
# move (they come from the packets), the spool's commit waits COMMIT_EVERY_S anyway.
GATHER_S: Final = 0.005


def main() -> None:
    """`python -m tracer.tap.capture FD`: FD is the tap's end of a socket pair."""
    # The tap decides when capture stops (after its last commit): Ctrl-C or a
    # SIGTERM sent to the whole process group must not end this process first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conn: CaptureEnd = Connection(int(sys.argv[1]))
    try:
        kind, config = conn.recv()
    except (EOFError, OSError):
        return
    if kind == CONFIG:
        run(conn, **config)


def run(
    conn: CaptureEnd,
    url: str,
    vhost: str,
    name: str,
    queue: str,
    prefetch: int,
    spool_path: str,
    spool_max: int,
    backlog: int,
    crash_after_commits: int,
    ack_together: bool = False,
    committer_niceness: int | None = None,
) -> None:
    """Capture's main loop (the target of its process)."""
    try:
        spool = Spool(spool_path, spool_max)
    except (sqlite3.Error, OSError) as error:  # a full disk, a folder it may not write
        with contextlib.suppress(OSError, ValueError):
            conn.send((LOST, f"cannot open the spool {spool_path}: {error}", 0))
        return
    capture: Capture | None = None
    try:
        consumer = TraceConsumer(
            url, vhost=vhost, name=name, decode_headers=False, packet_stamps=True
        ).connect()
        capture = Capture(
            conn,
            consumer,
            spool,
            backlog,
            crash_after_commits,
            prefetch if ack_together else 0,
            committer_niceness,
        )
        consumer.consume(queue, prefetch)
        conn.send((READY, spool.spool_id, stamping(consumer)))
        capture.loop()
    except (AMQPRawError, OSError) as error:
        unacked = capture.unacked if capture is not None else 0
        with contextlib.suppress(OSError, ValueError):
            conn.send((LOST, str(error) or type(error).__name__, unacked))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass  # the tap is gone
    finally:
        if capture is not None:
            capture.close()
            capture.consumer.close()
        spool.close()


def stamping(consumer: TraceConsumer) -> str:
    """How capture stamps messages, in words, for the tap's log."""
    if consumer.packet_stamps is not None:
        return "from each message's own packet (a packet socket), reading in bulk"
    return (
        f"by reading each message as it comes (no packet socket: {consumer.packet_stamps_refused})"
    )


class Capture:
    """One connection's capture: read and stamp (this thread), spool and ack
    (a committer thread: a durable commit waits for the disk, and a reader
    waiting with it would let packets pile up in the socket, where the kernel
    merges them and their stamps)."""

    def __init__(
        self,
        conn: CaptureEnd,
        consumer: TraceConsumer,
        spool: Spool,
        backlog: int,
        crash_after_commits: int = 0,
        ack_together: int = 0,
        committer_niceness: int | None = None,
    ) -> None:
        self.conn = conn
        self.committer_niceness = committer_niceness
        # Hold commits until this many deliveries were read (or HOLD_TOGETHER_S
        # passed): acking some of them would let the broker try the message
        # after them, which closed the last connection, while the rest wait
        # unacked, to be put back ahead of it once more.
        self.ack_together = ack_together
        self._hold_until = 0.0
        self._held = (0, 0)  # frames and duplicates committed, not yet acked nor told
        self.consumer = consumer
        self.spool = spool
        self.backlog_left = backlog
        self.crash_after_commits = crash_after_commits
        self.commits = 0
        self._lock = threading.Lock()  # pending, pending_tag, duplicates; and the pipe
        self._wake = threading.Condition(self._lock)
        self.pending: list[SpooledFrame] = []
        self.pending_tags: list[int] = []  # each pending frame's delivery tag
        self.pending_bytes = 0
        self.pending_tag = 0  # the highest delivery tag read (spooled or dropped as a copy)
        self.acked_tag = 0
        self.acked_seq: int | None = None  # proven acked: to record with the next commit
        self.recorded_seq = 0  # the acked_seq last written to the spool
        # (last sequence number, delivery tag) of acks sent whose Qos-Ok has not
        # come yet, oldest first.
        self.awaiting: deque[tuple[int, int]] = deque()
        self.proven_tag = 0
        self.proven = 0  # how many of the consumer's Qos-Oks were taken off `awaiting`
        self.duplicates = 0
        self.full_since: int | None = None
        self._closing = False
        self.failure: BaseException | None = None
        # Frames spooled whose ack may not have reached the broker: its
        # redeliveries of them are copies (tracer/tap/copies.py). Until their
        # copies all came and were acked for sure, the proven acks of this
        # capture do not pass those frames (a high-water mark would): if it
        # dies too, the next capture still looks for their copies.
        self.base_acked = spool.acked_seq()
        self.copies = RedeliveredCopies(frame.identity for _, frame in spool.unconfirmed())
        self._committer = threading.Thread(target=self._commit_loop, name="commit", daemon=True)

    @property
    def unacked(self) -> int:
        """Deliveries read whose ack the broker has not proven it took: after a
        lost connection, it delivers those again first."""
        proven_tag = self.proven_tag
        answered = self.consumer.acks_confirmed - self.proven
        awaiting = list(self.awaiting)  # the committer may be appending
        if answered > 0 and awaiting:
            proven_tag = awaiting[min(answered, len(awaiting)) - 1][1]
        # Deliveries of the read in which the broker closed the connection were
        # never handed on, and the broker counts them too.
        read_tag = max(self.pending_tag, self.consumer.last_delivery_tag)
        return max(0, read_tag - proven_tag)

    def send(self, message: FromCapture) -> None:
        with self._lock:
            self.conn.send(message)

    # --- the reading thread -----------------------------------------------------

    def loop(self) -> None:
        self._committer.start()  # before raising this thread's priority: it must not inherit it
        self.priority = raise_priority()
        consumer = self.consumer
        sock = consumer.fileno()
        pipe = self.conn.fileno()
        cancelling = False
        gather = consumer.packet_stamps is not None  # else each packet read as it comes
        self.take(consumer.take_buffered(), time.time_ns() // 1000)
        drained_ns = time.time_ns()  # when the socket was last found empty
        while True:
            if self.failure is not None:
                raise self.failure
            holding = self.pending_bytes > HOLD_BYTES  # the socket waits (and says so)
            watched = [pipe] if holding else [sock, pipe]
            readable, _, _ = select.select(watched, [], [], 0)
            floor_ns = drained_ns  # data was waiting: it may have come since then
            if not readable:
                readable, _, _ = select.select(watched, [], [], IDLE_WAIT_S)
                if not holding:
                    floor_ns = time.time_ns()  # it woke us: it came about now
            if pipe in readable:
                while select.select([pipe], [], [], 0)[0]:  # Connection.poll() costs more
                    kind = self.conn.recv()[0]
                    if kind == CANCEL and not cancelling:
                        cancelling = True
                        consumer.cancel()
                    elif kind == CLOSE:
                        self._finish()
                        return
            if sock in readable:
                # Read while the socket has more: each message with its own stamp.
                while True:
                    self.take(consumer.read_gathered(floor_ns), 0)
                    if not select.select([sock], [], [], 0)[0]:
                        drained_ns = time.time_ns()
                        break
                    if self.pending_bytes > HOLD_BYTES:
                        break
                if gather:
                    time.sleep(GATHER_S)
            elif holding:
                consumer.keep_alive()  # the broker's own heartbeats wait unread
            else:
                consumer.idle()
            if cancelling and consumer.cancel_ok and self._settled():
                self.send((CANCELLED,))
                cancelling = False
                consumer.cancel_ok = False

    def take(self, deliveries: list[Delivery], fallback_us: int) -> None:
        """Frames for the spool; the broker's copies of unconfirmed ones dropped."""
        if not deliveries:
            return
        frames: list[SpooledFrame] = []
        tags: list[int] = []
        size = 0
        duplicates = 0
        copies = self.copies if self.copies.expected else None  # mostly none: no call a delivery
        for delivery in deliveries:
            backlog = self.backlog_left > 0
            if backlog:
                self.backlog_left -= 1
            if copies is not None and copies.is_copy(delivery):
                duplicates += 1
                continue
            frames.append(
                SpooledFrame(
                    delivery.arrived_us or fallback_us,
                    delivery.stamp_error_us if delivery.stamp_error_us > STAMP_SLACK_US else 0,
                    delivery.redelivered,
                    backlog,
                    delivery.routing_key,
                    delivery.raw,
                    delivery.body,
                )
            )
            tags.append(delivery.tag)
            size += len(delivery.routing_key) + len(delivery.raw) + len(delivery.body)
        with self._wake:
            was_idle = not self.pending and self.pending_tag == self.acked_tag
            self.pending.extend(frames)
            self.pending_tags.extend(tags)
            self.pending_bytes += size
            self.pending_tag = deliveries[-1].tag
            self.duplicates += duplicates
            # The committer wakes by itself when its interval is up: a notice
            # per read would wake it (and take the interpreter's lock) per read.
            if was_idle or len(self.pending) >= CHUNK:
                self._wake.notify()

    def _settled(self) -> bool:
        with self._lock:
            return not self.pending and self.pending_tag == self.acked_tag

    def _finish(self) -> None:
        """Commit what was read, and stop the committer."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._committer.join(RETRY_FULL_S * 4)

    # --- the committing thread ----------------------------------------------------

    def _commit_loop(self) -> None:
        # Behind the traffic, as the rest of the tap: the process started at the
        # tap's own first niceness, so that its start waited on no one.
        set_thread_niceness(self.committer_niceness)
        try:
            while True:
                with self._wake:
                    while not self._closing:
                        now = time.monotonic()
                        if not self.pending and self.pending_tag == self.acked_tag:
                            self._record_proven_acks()  # idle: a stamp waits on no one
                            self._wake.wait(RETRY_FULL_S)
                        elif self.full_since is not None and now < self._retry_at:
                            self._wake.wait(self._retry_at - now)
                        elif len(self.pending) < CHUNK and now < self._next_commit_at:
                            self._wake.wait(self._next_commit_at - now)
                        elif self._holding(now):
                            self._wake.wait(min(RETRY_FULL_S, self._hold_until - now))
                        else:
                            break
                    self._next_commit_at = time.monotonic() + COMMIT_EVERY_S
                    closing = self._closing
                    # Left in `pending` (and its bytes) until committed: the
                    # reading thread, which reads no more while too much waits,
                    # must not see room while a commit to a full spool is tried.
                    frames, tags = self.pending[:CHUNK], self.pending_tags[:CHUNK]
                    size = sum(frame.size for frame in frames)
                    duplicates, self.duplicates = self.duplicates, 0
                    # Up to the chunk's last frame; with the last chunk, past the
                    # copies dropped after it too.
                    tag = tags[-1] if len(self.pending) > len(frames) else self.pending_tag
                committed = (not frames and tag == self.acked_tag) or self.commit(
                    frames, tag, duplicates
                )
                with self._lock:
                    if committed:  # the reading thread only appends: these are still first
                        del self.pending[: len(frames)], self.pending_tags[: len(frames)]
                        self.pending_bytes -= size
                    else:
                        self.duplicates += duplicates
                if not committed and closing:
                    return  # the spool is full: what is held comes back from the broker
                if closing:
                    with self._lock:
                        if not self.pending:
                            return
        except BaseException as error:  # noqa: BLE001 - handed to the reading thread
            self.failure = error

    _retry_at = 0.0
    _next_commit_at = 0.0

    def _holding(self, now: float, tag: int | None = None) -> bool:
        """Whether to wait for the rest of the deliveries to ack together
        (`tag`: whether an ack up to it must wait for the rest)."""
        upto = self.pending_tag if tag is None else tag
        if not self.ack_together or upto >= self.ack_together:
            return False
        if not self._hold_until:
            self._hold_until = now + HOLD_TOGETHER_S
        return now < self._hold_until

    def _take_proofs(self) -> None:
        """Move acked_seq up to the newest ack the broker has proven it took."""
        answered = self.consumer.acks_confirmed
        while self.proven < answered and self.awaiting:
            proven_seq, self.proven_tag = self.awaiting.popleft()
            self.proven += 1
            done = self.copies.done_tag  # once an ack past it is proven, those frames are confirmed
            if done is None or self.proven_tag < done:
                # Frames a dead capture left may still come again: not past them.
                proven_seq = min(proven_seq, self.base_acked)
            self.acked_seq = max(self.acked_seq or 0, proven_seq)

    def _record_proven_acks(self) -> None:
        """While idle, write proven acks down (the spool may then release those
        frames, and the next capture need not look for their copies)."""
        self._take_proofs()
        if self.acked_seq is None or self.acked_seq <= self.recorded_seq:
            return
        with contextlib.suppress(sqlite3.Error):
            self.spool.mark_acked(self.acked_seq)
            self.recorded_seq = self.acked_seq

    def commit(self, frames: list[SpooledFrame], tag: int, duplicates: int) -> bool:
        """Make `frames` durable, then ack up to `tag`; False while the spool is full."""
        self._take_proofs()
        acked_upto = self.acked_seq
        try:
            try:
                last = self.spool.append(frames, acked_upto=acked_upto)
            except SpoolFull:
                if acked_upto is None:
                    raise
                # What was acked may go once stored: say so on its own, so
                # the indexer can make room, then try once more.
                self.spool.mark_acked(acked_upto)
                last = self.spool.append(frames)
        except (SpoolFull, sqlite3.OperationalError) as error:
            self._full(str(error))
            return False
        self.commits += 1
        if self.crash_after_commits and self.commits >= self.crash_after_commits:
            os._exit(71)  # durable, not acked: the fault the tests need
        if self._holding(time.monotonic(), tag):  # a lot over CHUNK: durable, acked with the rest
            self._held = (self._held[0] + len(frames), self._held[1] + duplicates)
            return True
        if acked_upto is not None:
            self.recorded_seq = max(self.recorded_seq, acked_upto)
        self.consumer.ack(tag, confirm=True)
        self.acked_tag = tag
        self.awaiting.append((last, tag))
        if self.full_since is not None:
            self.send((SPOOL_OK, self.full_since, now_us()))
            self.full_since = None
        held_frames, held_duplicates = self._held
        self._held = (0, 0)
        self.send((SPOOLED, last, held_frames + len(frames), held_duplicates + duplicates))
        return True

    def _full(self, reason: str) -> None:
        self._retry_at = time.monotonic() + RETRY_FULL_S
        if self.full_since is None:
            self.full_since = now_us()
            self.send((SPOOL_FULL, self.full_since, reason))

    def close(self) -> None:
        """Record the acks the broker has proven it took, and only those: even a
        stop the tap asked for can cross the broker closing the connection (a
        541), and acks still in flight then are lost. The frames left
        unconfirmed only make the next capture look for copies of them."""
        if self._committer.is_alive():
            self._finish()
        self._take_proofs()
        if self.acked_seq is not None:
            with contextlib.suppress(sqlite3.Error):
                self.spool.mark_acked(self.acked_seq)


if __name__ == "__main__":
    main()
