"""The capture loop in this process (as its own process runs it), against the real
broker and a real spool: what it holds in memory while the spool is full, and
how it commits a long backlog."""

import contextlib
import os
import socket
import threading
import time
from multiprocessing.connection import Connection

import pytest

from rabbit.brokers import default_broker
from rabbit.raw import PEEK_SIZE, TraceConsumer
from tests.polling import wait_until
from tests.tracer.tapping import client
from tracer.tap import capture as tap_capture
from tracer.tap import capture_messages
from tracer.tap.spool import Spool, SpooledFrame

pytestmark = pytest.mark.slow


class CaptureRun:
    """Capture draining `queue` into `spool` on a thread; what it says, collected."""

    def __init__(self, vhost, queue, spool, prefetch, ack_together=0):
        ours, theirs = socket.socketpair()
        self.tap_end = Connection(ours.detach())
        self.capture_end = Connection(theirs.detach())
        self.consumer = TraceConsumer(
            default_broker().amqp_url(), vhost=vhost, name="warren-test-capture"
        ).connect()
        self.consumer.consume(queue, prefetch)
        self.capture = tap_capture.Capture(
            self.capture_end, self.consumer, spool, backlog=0, ack_together=ack_together
        )
        self.said = []
        self.failure = None
        self._loop = threading.Thread(target=self._run, daemon=True)
        self._listener = threading.Thread(target=self._listen, daemon=True)

    def start(self):
        self._loop.start()
        self._listener.start()
        return self

    def _run(self):
        try:
            self.capture.loop()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.failure = error
        finally:
            with contextlib.suppress(OSError):  # the loop raised this thread's priority
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))

    def _listen(self):
        with contextlib.suppress(EOFError, OSError):
            while True:
                self.said.append(self.tap_end.recv())

    def spooled(self):
        return sum(message[2] for message in self.said if message[0] == capture_messages.SPOOLED)

    def stop(self):
        with contextlib.suppress(OSError):
            self.tap_end.send((capture_messages.CLOSE,))
        self._loop.join(10)
        self.capture.close()
        self.consumer.close()
        self.tap_end.close()
        self.capture_end.close()
        assert self.failure is None, self.failure


def _publish(vhost, queue, count, size):
    connection = client(vhost)
    try:
        channel = connection.channel()
        channel.queue_declare(queue)
        for number in range(count):
            channel.basic_publish("", queue, b"%08d" % number + b"x" * (size - 8))
    finally:
        connection.close()


def test_it_reads_no_more_while_a_full_spool_holds_what_it_read(
    scratch_vhost, tmp_path, monkeypatch
):
    hold = 1024**2
    monkeypatch.setattr(tap_capture, "HOLD_BYTES", hold)
    spool = Spool(tmp_path / "full.spool", max_bytes=1)
    spool.append([SpooledFrame(1, 0, False, False, b"k", b"h", b"already here")])
    _publish(scratch_vhost, "big", 120, 64 * 1024)  # 7.5 MiB, all within the prefetch
    run = CaptureRun(scratch_vhost, "big", spool, prefetch=200).start()
    try:
        wait_until(
            lambda: any(message[0] == capture_messages.SPOOL_FULL for message in run.said),
            timeout=10,
            what="capture to find the spool full",
        )
        wait_until(
            lambda: run.capture.pending_bytes > hold,
            timeout=10,
            what="capture to hold its budget in memory",
        )
        for _ in range(20):  # a second: it must read no further
            assert run.capture.pending_bytes <= hold + PEEK_SIZE
            threading.Event().wait(0.05)
        assert run.failure is None  # heartbeats kept the connection while it held back

        spool.max_bytes = 1024**3  # room again (as when the indexer has caught up)
        wait_until(lambda: run.spooled() == 120, timeout=20, what="every message spooled")
        assert any(message[0] == capture_messages.SPOOL_OK for message in run.said)
    finally:
        run.stop()
        spool.close()


def test_it_commits_a_long_backlog_in_chunks(scratch_vhost, tmp_path):
    count = 3 * tap_capture.CHUNK + 17
    _publish(scratch_vhost, "backlog", count, 64)
    spool = Spool(tmp_path / "chunks.spool", max_bytes=1024**3)
    run = CaptureRun(scratch_vhost, "backlog", spool, prefetch=count).start()
    try:
        wait_until(lambda: run.spooled() == count, timeout=30, what="the backlog spooled")
        commits = [message[2] for message in run.said if message[0] == capture_messages.SPOOLED]
        assert max(commits) <= tap_capture.CHUNK
        assert spool.held()[1] == count
        bodies = [frame.body[:8] for _, frame in spool.read(0, count + 1)]
        assert bodies == [b"%08d" % number for number in range(count)]  # in order
    finally:
        run.stop()
        spool.close()


def test_it_commits_a_trickle_of_messages_a_few_times_a_second(scratch_vhost, tmp_path):
    """One commit a read cost an fsync, an ack and its proof per message; messages
    that come one by one wait up to COMMIT_EVERY_S for company instead."""
    spool = Spool(tmp_path / "trickle.spool", max_bytes=1024**3)
    connection = client(scratch_vhost)
    channel = connection.channel()
    channel.queue_declare("trickle")
    run = CaptureRun(scratch_vhost, "trickle", spool, prefetch=1000).start()
    count, apart_s = 100, 0.005
    try:
        started = time.monotonic()
        for number in range(count):
            channel.basic_publish("", "trickle", b"%08d" % number)
            connection.sleep(apart_s)
        elapsed = time.monotonic() - started
        wait_until(lambda: run.spooled() == count, timeout=10, what="the trickle spooled")
        commits = sum(1 for message in run.said if message[0] == capture_messages.SPOOLED)
        most = elapsed / tap_capture.COMMIT_EVERY_S + 2
        assert 1 < commits <= most, f"{commits} commits for {count} messages in {elapsed:.2f} s"
        bodies = [frame.body for _, frame in spool.read(0, count + 1)]
        assert bodies == [b"%08d" % number for number in range(count)]
    finally:
        connection.close()
        run.stop()
        spool.close()


@pytest.mark.parametrize(
    ("together", "count", "groups"),
    [(True, 60, 3), (False, 60, 3), (True, tap_capture.CHUNK + 500, 1)],
)
def test_it_acks_the_deliveries_left_unacked_after_a_541_together(
    scratch_vhost, tmp_path, together, count, groups
):
    """After a 541 capture asks for as many as were left unacked; acking some of
    them would let the broker try the message that closed the connection while
    the rest wait, to be put back ahead of it again (tracer/tap/reader.py).
    Three groups well apart: capture reads each on its own. One group of more
    than a chunk, waiting before capture starts (as requeued deliveries do):
    committed in two parts, acked and told once."""
    spool = Spool(tmp_path / "together.spool", max_bytes=1024**3)
    connection = client(scratch_vhost)
    channel = connection.channel()
    channel.queue_declare("together")

    def publish(group):
        for number in range(count // groups):
            channel.basic_publish("", "together", b"%d.%d" % (group, number))

    if groups == 1:
        publish(0)
        wait_until(
            lambda: channel.queue_declare("together", passive=True).method.message_count == count,
            timeout=10,
            what="all of them in the queue",
        )
    run = CaptureRun(
        scratch_vhost, "together", spool, prefetch=count, ack_together=count if together else 0
    ).start()
    try:
        assert count % groups == 0
        if groups > 1:
            for group in range(groups):
                publish(group)
                connection.sleep(tap_capture.COMMIT_EVERY_S * 2.5)
        wait_until(lambda: run.spooled() == count, timeout=20, what="all of them spooled")
        told = [message for message in run.said if message[0] == capture_messages.SPOOLED]
        if together:
            assert [(message[1], message[2]) for message in told] == [(count, count)]
        else:
            assert len(told) >= 2  # what the reader must not get after a 541
        assert len(spool.read(0, count + 1)) == count
    finally:
        connection.close()
        run.stop()
        spool.close()
