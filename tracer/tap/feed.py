"""The tap's feeder process: one per traced vhost, decoding what capture spooled.

Capture (tracer/tap/capture.py) makes the raw trace messages durable in the
vhost's spool; this process reads them from there in order, from the position
the database says was stored last, decodes each once (tracer/tap/decoding.py)
and hands the decoded events, with their spool sequence numbers, to the tap's
writer through a pipe. The writer commits them with the spool position in one
transaction, then says so (STORED): only then are they released from the spool.
It runs niced, below capture: indexing may fall behind, reading may not; and
while the machine is busy it pauses when the tap says so (PAUSE; the tap
decides, tracer/tap/give_way.py), releasing what is stored but decoding nothing.

It reads the spool when the tap passes on capture's word that a commit made
more of it durable (and, untold, twice a second). At most WINDOW events are
in flight between here and the writer's commit, so a spool that grew during a
burst is decoded as fast as it is stored, never into memory all at once.
Nothing here touches Django or its database, and the process ends as soon as
its pipe closes. A release the spool's disk cannot take (full to the last
byte) is tried again later: the frames wait, stored, and nothing is decoded
twice.
"""

import contextlib
import os
import select
import signal
import sqlite3
import sys
import time
from multiprocessing.connection import Connection
from typing import Any, Final, Literal, TypeAlias, TypedDict

from rabbit.field_tables import headers_of
from tracer.tap.decoding import Captured, decode
from tracer.tap.spool import Spool, SpooledFrame

# Tap -> feeder
CONFIG: Final = "config"
SPOOLED: Final = "spooled"  # capture made the spool durable up to this sequence number
STORED: Final = "stored"  # committed up to this sequence number
PAUSE: Final = "pause"  # (PAUSE, True): decode nothing until (PAUSE, False); tracer/tap/give_way.py
CLOSE: Final = "close"
# Feeder -> tap
READY: Final = "ready"
EVENTS: Final = "events"

CHUNK = 1000  # most events per message on the pipe
WINDOW = 24_000  # most events decoded but not yet committed
# How often the feeder looks in the spool untold. It reads when told (SPOOLED,
# which the tap passes on from capture after each commit); looking every few
# milliseconds instead cost an idle tap 2.6 % of a core and, under load,
# found nothing new in most looks (capture commits every 100 ms).
LOOK_UNTOLD_S = 0.5
RELEASE_RETRY_S = 0.5  # how often a release the disk refused is tried again


class FeederConfig(TypedDict):
    """The CONFIG message's settings: run()'s keyword arguments."""

    spool_path: str
    spool_max: int
    position: int  # decode what comes after this sequence number
    stored: int  # the last sequence number the database holds
    body_limit: int
    vhost: str
    niceness: int  # how much nicer than capture (WARREN_INDEX_NICENESS)
    paused: bool  # start paused: the machine is busy (tracer/tap/give_way.py)


# (spool sequence number, event); 0: an event rescued through the management API.
Pair: TypeAlias = tuple[int, Captured]
ToFeeder: TypeAlias = (
    tuple[Literal["config"], FeederConfig]
    | tuple[Literal["spooled"], int]
    | tuple[Literal["stored"], int]
    | tuple[Literal["pause"], bool]
    | tuple[Literal["close"]]
)
FromFeeder: TypeAlias = tuple[Literal["ready"]] | tuple[Literal["events"], list[Pair]]
Received: TypeAlias = tuple[Any, ...]
FeederEnd: TypeAlias = "Connection[FromFeeder, Received]"  # generic to mypy only


def main() -> None:
    """`python -m tracer.tap.feed FD`: FD is the tap's end of a socket pair."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conn: FeederEnd = Connection(int(sys.argv[1]))
    try:
        kind, config = conn.recv()
    except (EOFError, OSError):
        return
    if kind == CONFIG:
        with contextlib.suppress(EOFError, BrokenPipeError, KeyboardInterrupt):
            run(conn, **config)


def run(
    conn: FeederEnd,
    spool_path: str,
    spool_max: int,
    position: int,
    stored: int,
    body_limit: int,
    vhost: str,
    niceness: int,
    paused: bool = False,
) -> None:
    """The feeder's main loop (the target of its process)."""
    with contextlib.suppress(OSError):
        os.nice(niceness)
    spool = Spool(spool_path, spool_max)
    try:
        conn.send((READY,))
        _loop(conn, spool, position, stored, body_limit, vhost, paused)
    finally:
        spool.close()


def _loop(
    conn: FeederEnd,
    spool: Spool,
    position: int,
    stored: int,
    body_limit: int,
    vhost: str,
    paused: bool,
) -> None:
    pipe = conn.fileno()
    sent = position
    spooled = position  # the newest sequence number capture said is durable
    looked_at = 0.0  # when the spool was last read: at once, for what waits there
    released = 0  # stored before a crash that came before the release: released first
    retry_at = 0.0
    while True:
        now = time.monotonic()
        if released < stored and now >= retry_at:
            if _release(spool, stored):
                released = stored
            else:
                retry_at = now + RELEASE_RETRY_S
        # Sequence numbers in flight (an upper bound of the events: numbers skip
        # where the spool's age bound dropped frames).
        room = 0 if paused else WINDOW - (sent - stored)
        frames: list[tuple[int, SpooledFrame]] = []
        if room > 0 and (spooled > sent or now - looked_at >= LOOK_UNTOLD_S):
            frames = spool.read(after=sent, limit=min(CHUNK, room))
            looked_at = now
            if frames:
                pairs = [(seq, decode_frame(frame, body_limit, vhost)) for seq, frame in frames]
                conn.send((EVENTS, pairs))
                sent = frames[-1][0]
            else:
                spooled = sent  # what was said to be there went with the age bound
        more = (len(frames) == CHUNK or spooled > sent) and sent - stored < WINDOW and not paused
        wait = 0.0 if more else LOOK_UNTOLD_S
        if released < stored:
            wait = min(wait, max(0.0, retry_at - now))
        if select.select([pipe], [], [], wait)[0]:
            while select.select([pipe], [], [], 0)[0]:
                message = conn.recv()
                if message[0] == SPOOLED:
                    spooled = max(spooled, message[1])
                elif message[0] == STORED and message[1] > stored:
                    stored = message[1]  # released at the top of the loop
                elif message[0] == PAUSE:
                    paused = message[1]
                elif message[0] == CLOSE:
                    return


def _release(spool: Spool, upto: int) -> bool:
    """Let the spool forget what is stored; False when its disk refused."""
    try:
        spool.release(upto)
    except sqlite3.OperationalError:
        return False
    return True


def decode_frame(frame: SpooledFrame, body_limit: int, vhost: str) -> Captured:
    """A spooled frame as an event: its header table read here, not in capture."""
    header = frame.header
    headers = None
    header_error = None
    try:
        flags = int.from_bytes(header[:2], "big")
        headers = headers_of(header, 2, flags)
    except Exception as error:  # noqa: BLE001 - whatever the bytes, the event is kept
        header_error = f"{type(error).__name__}: {error}"[:500]
    event = decode(
        frame.routing_key,
        headers,
        frame.body,
        frame.arrived_us,
        body_limit,
        tap_redelivered=False,  # capture already dropped the broker's copies
        header_bytes=header,
        header_error=header_error,
        vhost=vhost,
    )
    event.backlog = frame.backlog
    event.stamp_error_us = frame.stamp_error_us
    return event


if __name__ == "__main__":
    main()
