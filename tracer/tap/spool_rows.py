"""How the spool (tracer/tap/spool.py) holds an append: its frames packed into one row.

A row of `batches` holds a commit of capture's: the frames' arrival stamps and
stamp errors as an int64 array, their flags a byte each, the lengths of their
routing keys, headers and bodies as a uint32 array, and those bytes joined.
"""

import array
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

REDELIVERED, BACKLOG = 1, 2  # a frame's flags
# Native byte order: a spool is a file of one machine, written and read there.
_STAMP, _LENGTH = "q", "I"


@dataclass(frozen=True, slots=True)
class SpooledFrame:
    """One trace message as capture read it."""

    arrived_us: int  # the kernel's arrival stamp of its last bytes (µs since the epoch)
    stamp_error_us: int  # how late that stamp may be (0: read as it came)
    redelivered: bool  # the broker delivered it before (a capture that died before its ack)
    backlog: bool  # it waited in the tap queue while no capture read it
    routing_key: bytes
    header: bytes  # the content header's property flags and encoded properties
    body: bytes

    @property
    def identity(self) -> tuple[bytes, bytes, bytes]:
        """What the broker sends again, byte for byte, when it redelivers it."""
        return (self.routing_key, self.header, self.body)

    @property
    def size(self) -> int:
        return len(self.routing_key) + len(self.header) + len(self.body)


class Row(NamedTuple):
    """One append's frames as a row of `batches` holds them."""

    size: int  # the frames' routing keys, headers and bodies, in bytes
    oldest_us: int
    newest_us: int
    stamps: bytes
    flags: bytes
    lengths: bytes
    data: bytes


def pack_row(frames: Sequence[SpooledFrame]) -> Row:
    """One row of `frames`: a few arrays and one join, where a row a frame bound
    seven values a frame and inserted each on its own (in capture, a commit of
    2,000 frames of 500 bytes cost 10.7 µs of CPU a frame so, and 4.0 packed;
    `bench capture` prints capture's cost an event). Packed before the write
    transaction, which then holds the spool's lock for the insert alone."""
    stamps = array.array(_STAMP, [v for f in frames for v in (f.arrived_us, f.stamp_error_us)])
    flags = bytes([f.redelivered | f.backlog << 1 for f in frames])
    lengths = array.array(
        _LENGTH, [n for f in frames for n in (len(f.routing_key), len(f.header), len(f.body))]
    )
    data = b"".join([part for f in frames for part in (f.routing_key, f.header, f.body)])
    arrivals = stamps[0::2]
    return Row(
        sum(lengths), min(arrivals), max(arrivals), stamps.tobytes(), flags, lengths.tobytes(), data
    )


def _array(kind: str, blob: bytes) -> "array.array[int]":
    numbers = array.array(kind)
    numbers.frombytes(blob)
    return numbers


def unpack_row(
    stamps_blob: bytes, flags: bytes, lengths_blob: bytes, data: bytes
) -> list[SpooledFrame]:
    stamps = _array(_STAMP, stamps_blob)
    lengths = _array(_LENGTH, lengths_blob)
    frames = []
    at = 0
    for i, flag in enumerate(flags):
        key_end = at + lengths[3 * i]
        header_end = key_end + lengths[3 * i + 1]
        body_end = header_end + lengths[3 * i + 2]
        frames.append(
            SpooledFrame(
                stamps[2 * i],
                stamps[2 * i + 1],
                bool(flag & REDELIVERED),
                bool(flag & BACKLOG),
                data[at:key_end],
                data[key_end:header_end],
                data[header_end:body_end],
            )
        )
        at = body_end
    return frames


def insert_row(db: sqlite3.Connection, first: int, row: Row) -> int:
    """`row`, its frames numbered from `first`; the last one's number."""
    last = first + len(row.flags) - 1
    db.execute(
        "INSERT INTO batches (first_seq, last_seq, bytes, oldest_us, newest_us, stamps, flags, "
        "lengths, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (first, last, *row),
    )
    return last


def arrival_in_row(stamps: bytes, index: int) -> int:
    """The arrival (µs) of a row's frame at `index` (its first for a negative one)."""
    return int(_array(_STAMP, stamps)[2 * max(0, index)])
