"""The tap's feeder process: one per traced vhost, reading and decoding on a core of its own.

Profiling the tap (one process, reader threads and the writer under one GIL)
showed reading (pika) and decoding take more than half of every event's
Python time, so storing could never have the whole core. The tap's reader
thread (tracer/tap/reader.py) therefore starts this process, which consumes the
tap queue over rabbit/raw.py, stamps each frame on arrival, decodes it
once (tracer/tap/decoding.py) and hands the decoded events to the tap through a
pipe, in chunks. The tap acks through the same pipe after its commit.

Nothing here touches Django or the database, and the process ends as soon as
its pipe closes: a tap that dies (even by SIGKILL) takes its feeders with it,
and the broker requeues whatever was not acked.
"""

import contextlib
import select
import signal
import sys
import time
from collections.abc import Iterable
from multiprocessing.connection import Connection
from typing import Any, Final, Literal, TypeAlias, TypedDict

from rabbit.delivery import Delivery
from rabbit.field_tables import AMQPRawError
from rabbit.raw import TraceConsumer
from tracer.tap.decoding import Captured, decode
from tracer.times import now_us

# Parent -> feeder
CONFIG: Final = "config"  # first message: where to read (credentials never on the command line)
ACK: Final = "ack"
CANCEL: Final = "cancel"
CLOSE: Final = "close"
# Feeder -> parent
READY: Final = "ready"
EVENTS: Final = "events"
CANCELLED: Final = "cancelled"
LOST: Final = "lost"


class FeederConfig(TypedDict):
    """The CONFIG message's settings: run()'s keyword arguments."""

    url: str
    vhost: str
    name: str
    queue: str
    prefetch: int
    body_limit: int


# (delivery tag, event); tag 0: an event rescued through the management API, no delivery.
Pair: TypeAlias = tuple[int, Captured]
# What each side sends, kind first.
ToFeeder: TypeAlias = (
    tuple[Literal["config"], FeederConfig]
    | tuple[Literal["ack"], int]  # everything up to this delivery tag
    | tuple[Literal["cancel"]]
    | tuple[Literal["close"]]
)
FromFeeder: TypeAlias = (
    tuple[Literal["ready"]]
    | tuple[Literal["events"], list[Pair]]
    | tuple[Literal["cancelled"]]
    | tuple[Literal["lost"], str, int]  # why, how many deliveries were left unacked
)
# A message as it comes off the pipe (unpickled): read by its kind, its fields as it says.
Received: TypeAlias = tuple[Any, ...]
# The feeder's end of the pipe.
FeederEnd: TypeAlias = "Connection[FromFeeder, Received]"  # generic to mypy only

CHUNK = 1000  # most events per message on the pipe
FLUSH_S = 0.005  # longest an event waits in the feeder for others to travel with
IDLE_WAIT_S = 0.05


def main() -> None:
    """`python -m tracer.tap.feed FD`: FD is the tap's end of a socket pair."""
    # The tap decides when its feeder stops (after its last acks): Ctrl-C or a
    # SIGTERM sent to the whole process group must not end this process first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conn: FeederEnd = Connection(int(sys.argv[1]))
    try:
        kind, config = conn.recv()
    except (EOFError, OSError):
        return
    if kind == CONFIG:
        run(conn, **config)


def run(
    conn: FeederEnd, url: str, vhost: str, name: str, queue: str, prefetch: int, body_limit: int
) -> None:
    """The feeder's main loop (the target of a spawned process)."""
    consumer = None
    tags = Tags()
    try:
        consumer = TraceConsumer(url, vhost=vhost, name=name).connect()
        consumer.consume(queue, prefetch)
        conn.send((READY,))
        _loop(conn, consumer, body_limit, tags)
    except (AMQPRawError, OSError) as error:
        with contextlib.suppress(OSError, ValueError):
            conn.send((LOST, str(error) or type(error).__name__, tags.unacked))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass  # the tap is gone
    finally:
        if consumer is not None:
            consumer.close()


class Tags:
    """The highest delivery tag read and acked: how many deliveries a lost
    connection left unacked (they come back first, in order, on the next one)."""

    __slots__ = ("delivered", "acked")

    delivered: int
    acked: int

    def __init__(self) -> None:
        self.delivered = 0
        self.acked = 0

    @property
    def unacked(self) -> int:
        return max(0, self.delivered - self.acked)


def _loop(conn: FeederEnd, consumer: TraceConsumer, body_limit: int, tags: Tags) -> None:
    sock = consumer.fileno()
    pipe = conn.fileno()
    cancelling = False
    pending = _decoded(consumer.take_buffered(), now_us(), body_limit, consumer.vhost)
    if pending:
        tags.delivered = pending[-1][0]
    first_at = time.monotonic()
    while True:
        wait = IDLE_WAIT_S if not pending else max(0.0, FLUSH_S - (time.monotonic() - first_at))
        readable, _, _ = select.select([sock, pipe], [], [], wait)
        if pipe in readable:
            while select.select([pipe], [], [], 0)[0]:  # Connection.poll() costs more
                message = conn.recv()
                kind = message[0]
                if kind == ACK:
                    consumer.ack(message[1])
                    tags.acked = max(tags.acked, message[1])
                elif kind == CANCEL and not cancelling:
                    cancelling = True
                    consumer.cancel()
                elif kind == CLOSE:
                    return
        if sock in readable:
            events = _decoded(consumer.read(), consumer.received_us, body_limit, consumer.vhost)
            if events:
                tags.delivered = max(tags.delivered, events[-1][0])
                if not pending:
                    first_at = time.monotonic()
                pending.extend(events)
        else:
            consumer.idle()
        # Events wait a few milliseconds to travel together: stamped already, they
        # lose no accuracy, and the tap's writer wakes once for many.
        if pending and (
            len(pending) >= CHUNK or time.monotonic() - first_at >= FLUSH_S or cancelling
        ):
            for start in range(0, len(pending), CHUNK):
                conn.send((EVENTS, pending[start : start + CHUNK]))
            pending = []
        if cancelling and consumer.cancel_ok:
            conn.send((CANCELLED,))
            cancelling = False
            consumer.cancel_ok = False


def _decoded(
    deliveries: Iterable[Delivery], arrival_us: int, body_limit: int, vhost: str
) -> list[Pair]:
    """(delivery tag, Captured) for each delivery, stamped when its bytes were read."""
    return [
        (
            delivery.tag,
            decode(
                delivery.routing_key,
                delivery.headers,
                delivery.body,
                arrival_us,
                body_limit,
                tap_redelivered=delivery.redelivered,
                header_bytes=delivery.raw,
                header_error=delivery.header_error,
                vhost=vhost,
            ),
        )
        for delivery in deliveries
    ]


if __name__ == "__main__":
    main()
