"""Capture alone: read a tap queue, stamp, make durable in the spool, ack — on one core.

The capture loop itself (tracer/tap/capture.py, as its process runs it, here in
this process): each message stamped with its own packet's arrival (from a
packet socket as root, reading in bulk; else read on its own), header tables left
encoded, appended to a spool (tracer/tap/spool.py) in durable commits by its
committer thread, then acked (multiple). Two equal tap queues are pre-filled
with trace-shaped messages (benchmarks/synthetic.py); one is drained through
capture, the other, side by side in the same run, through the raw reader's
plain loop without the spool or stamps per message (read and ack only): the
difference is what durability and per-message stamps cost.
Goal: 50,000 events a second read, stamped and made durable.
"""

import contextlib
import os
import socket
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from benchmarks import common, synthetic
from rabbit import amqp
from rabbit.raw import TraceConsumer
from tracer.tap.capture import Capture
from tracer.tap.capture_messages import CLOSE, SPOOLED
from tracer.tap.spool import Spool

GOAL_PER_S = 50_000
PREFETCH = 16_000
DRAIN_LIMIT_S = 120.0
SPOOL_MAX_BYTES = 8 * 1024**3


def add_arguments(parser):
    parser.add_argument(
        "--capture-events", type=int, default=200_000, help="events per queue (capture)"
    )


def run(options, out):
    events = max(4, options.get("capture_events") or 200_000)
    report = common.Report("capture")
    with common.scratch_vhost("warren-bench-capture") as (vhost, _client, config):
        url = config.amqp_url()
        connection = amqp.blocking_connection(url, vhost=vhost, name="warren-bench-capture")
        try:
            channel = connection.channel()
            for queue in ("spooled", "read-only"):
                channel.queue_declare(queue)
        finally:
            connection.close()
        emitted = 0
        for queue in ("spooled", "read-only"):
            out(f"capture: pre-filling {queue!r} with {events:,} trace-shaped events\n")
            emitted = synthetic.prefill(url, vhost, queue, calls=events // 4)
        reference = drain(url, vhost, "read-only", emitted)
        with tempfile.TemporaryDirectory(prefix="warren-bench-spool-") as folder:
            spool = Spool(Path(folder) / "capture.spool", SPOOL_MAX_BYTES)
            try:
                spooled = capture_all(url, vhost, "spooled", emitted, spool)
                held_bytes, held = spool.held()
            finally:
                spool.close()
    capacity = 1e6 / spooled.cpu_us if spooled.cpu_us else 0.0
    report.add(
        "events one core captures per second (1 s / CPU per event)",
        f">= {GOAL_PER_S:,}",
        f"{capacity:,.0f}",
        f"read and ack only: {1e6 / reference.cpu_us:,.0f}" if reference.cpu_us else "",
        ok=capacity >= GOAL_PER_S,
    )
    report.add(
        "CPU per event (this process)",
        "",
        f"{spooled.cpu_us:.1f} µs",
        f"read and ack only: {reference.cpu_us:.1f} µs",
    )
    report.add(
        "events drained per second (wall clock)",
        "",
        f"{spooled.per_second:,.0f}",
        f"read and ack only: {reference.per_second:,.0f}",
    )
    if spooled.stamps == "packet":
        report.add(
            "events stamped from their own packet (packet socket)",
            "",
            f"{spooled.by_packet:,}",
            f"from the read, the packet's copy missing (stamp error said): {spooled.by_read:,}",
        )
    else:
        report.add(
            "events read one message a read (own stamp)",
            "",
            f"{spooled.alone:,}",
            f"in one read while far behind (stamp error said): {spooled.in_chunks:,}",
        )
    report.add("events in the spool", f"= {emitted:,}", f"{held:,}", ok=held == emitted)
    report.add(
        "spool commits", "", f"{spooled.reads:,}", f"{held / max(1, spooled.reads):.0f} a commit"
    )
    report.add("spool size", "", f"{held_bytes / 1024**2:.1f} MiB")
    report.note(
        "one process (a reading thread, a committing one), header tables left encoded; "
        "stamps from a packet socket where allowed (root), else each message read with "
        "its own system call; commits to SQLite (WAL, synchronous=FULL) before their ack"
    )
    report.note(
        "the wall-clock rate is bounded by the broker, which spends more CPU delivering "
        "each event than capture spends taking it (bench capacity measures its share)"
    )
    return report


def capture_all(url, vhost, queue, expected, spool):
    """Drain `queue` through tracer.tap.capture's loop into `spool`: wall and CPU time."""
    ours, theirs = socket.socketpair()
    tap_end, capture_end = Connection(ours.detach()), Connection(theirs.detach())
    consumer = TraceConsumer(
        url, vhost=vhost, name="warren-bench-capture", decode_headers=False, packet_stamps=True
    )
    consumer.connect()
    commits = [0]

    def follow():  # the tap's side: what capture says, until it has spooled everything
        while True:
            message = tap_end.recv()
            if message[0] == SPOOLED:
                commits[0] += 1
                if message[1] >= expected:
                    tap_end.send((CLOSE,))
                    return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        consumer.consume(queue, PREFETCH)
        Capture(capture_end, consumer, spool, backlog=0).loop()
    finally:
        consumer.close()
        with contextlib.suppress(OSError):  # the loop raised this thread's priority
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    follower.join(5)
    tap_end.close()
    capture_end.close()
    drained = Drained(expected, commits[0], wall, cpu)
    drained.alone, drained.in_chunks = consumer.read_alone, consumer.read_in_chunks
    drained.by_packet, drained.by_read = consumer.stamped_by_packet, consumer.stamped_by_read
    drained.stamps = "packet" if consumer.packet_stamps_refused == "" else "socket"
    return drained


class Drained:
    def __init__(self, count, reads, wall_s, cpu_s):
        self.count = count
        self.reads = reads
        self.per_second = count / wall_s if wall_s else 0.0
        self.cpu_us = cpu_s * 1e6 / count if count else 0.0
        self.alone = self.in_chunks = 0  # how read_each took them (capture only)
        self.by_packet = self.by_read = 0  # how read_gathered stamped them (capture only)
        self.stamps = ""


def drain(url, vhost, queue, expected):
    """The reference: read `expected` deliveries from `queue` with the raw reader's
    plain loop (big reads, one stamp a read) and ack them; no spool."""
    consumer = TraceConsumer(url, vhost=vhost, name="warren-bench-capture", decode_headers=False)
    consumer.connect()
    try:
        consumer.consume(queue, PREFETCH)
        got = reads = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        deadline = time.monotonic() + DRAIN_LIMIT_S
        deliveries = consumer.take_buffered()
        while got < expected:
            if time.monotonic() > deadline:
                raise common.BenchError(f"capture read {got:,} of {expected:,} in time")
            if not deliveries:
                deliveries = consumer.poll(0.5)
                continue
            reads += 1
            consumer.ack(deliveries[-1].tag)
            got += len(deliveries)
            deliveries = []
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    finally:
        consumer.close()
    return Drained(got, reads, wall, cpu)
