"""The capture spool: trace messages made durable on local disk, as they came, before an ack.

Capture (reading the tap queue at the broker's pace) and indexing (decoding,
pairing, storing) are to run apart, so that reading never waits on storing:
capture appends what it read here and acks the broker once the append is on
disk; indexers read it in order at their own pace and release what they have
stored. Nothing is decoded on the way in: a frame keeps its routing key, its
encoded properties and its body as bytes, with the moment its bytes arrived.

The store is an SQLite file in WAL mode (the standard library's embedded
database, made for exactly this: atomic commits, ordered reads, a reader never
blocking the writer), `synchronous=FULL`, so a committed append survives a
crash of the process and of the machine. It is bounded in bytes
(WARREN_SPOOL_MAX): an append that would pass the bound is refused whole
(`SpoolFull`), so capture stops acking and the broker's bounded tap queue takes
over; and in age: `expire` drops what waited longer than the bound, and says
how many, for the caller to record as a gap.
"""

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: positions stay valid
    arrived_us INTEGER NOT NULL,
    read_id INTEGER NOT NULL,
    redelivered INTEGER NOT NULL,
    routing_key BLOB NOT NULL,
    header BLOB NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    bytes INTEGER NOT NULL,
    frames INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals (id, bytes, frames)
    SELECT 1, COALESCE(SUM(LENGTH(routing_key) + LENGTH(header) + LENGTH(body)), 0), COUNT(*)
    FROM frames;
"""


_MEASURE = "SELECT COALESCE(SUM(LENGTH(routing_key) + LENGTH(header) + LENGTH(body)), 0), COUNT(*)"
_UP_TO_SEQ = (f"{_MEASURE} FROM frames WHERE seq <= ?", "DELETE FROM frames WHERE seq <= ?")
_ARRIVED_BEFORE = (
    f"{_MEASURE} FROM frames WHERE arrived_us < ?",
    "DELETE FROM frames WHERE arrived_us < ?",
)


@dataclass(frozen=True, slots=True)
class SpooledFrame:
    """One trace message as capture read it."""

    arrived_us: int  # the kernel's arrival stamp of its bytes (µs since the epoch)
    read_id: int  # frames taken from the socket in one read share it, and their stamp
    redelivered: bool  # the broker delivered it before (a capture that died before its ack)
    routing_key: bytes
    header: bytes  # the content header's encoded properties, undecoded
    body: bytes

    @property
    def size(self) -> int:
        return len(self.routing_key) + len(self.header) + len(self.body)


class SpoolFull(Exception):
    """An append would pass the spool's bound in bytes: nothing of it was written."""


class Spool:
    """One spool file. Several processes may open it: one appends, others read
    and release (each change is its own short transaction)."""

    def __init__(self, path: str | Path, max_bytes: int, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # --- capture's side ---------------------------------------------------------

    def append(self, frames: Sequence[SpooledFrame]) -> int:
        """Write `frames` in one transaction, durably; the last one's sequence number.

        Raises SpoolFull, writing nothing, when they would pass `max_bytes`.
        """
        if not frames:
            return self.last_seq()
        size = sum(frame.size for frame in frames)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            (held,) = db.execute("SELECT bytes FROM totals WHERE id = 1").fetchone()
            if held + size > self.max_bytes:
                raise SpoolFull(
                    f"the spool holds {held:,} bytes; {size:,} more would pass its bound "
                    f"of {self.max_bytes:,}"
                )
            db.executemany(
                "INSERT INTO frames (arrived_us, read_id, redelivered, routing_key, header, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (f.arrived_us, f.read_id, int(f.redelivered), f.routing_key, f.header, f.body)
                    for f in frames
                ],
            )
            db.execute(
                "UPDATE totals SET bytes = bytes + ?, frames = frames + ? WHERE id = 1",
                (size, len(frames)),
            )
            last = self._sequence()
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return last

    # --- the indexers' side -------------------------------------------------------

    def read(self, after: int, limit: int) -> list[tuple[int, SpooledFrame]]:
        """Up to `limit` frames with a sequence number above `after`, in order."""
        rows = self._db.execute(
            "SELECT seq, arrived_us, read_id, redelivered, routing_key, header, body "
            "FROM frames WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [
            (seq, SpooledFrame(arrived, read_id, bool(again), key, header, body))
            for seq, arrived, read_id, again, key, header, body in rows
        ]

    def release(self, upto: int) -> int:
        """Forget every frame up to sequence number `upto` (stored elsewhere now);
        how many went."""
        return self._delete(_UP_TO_SEQ, upto)

    def expire(self, older_than_us: int) -> int:
        """Drop frames that arrived before `older_than_us` (the age bound), stored
        or not: how many went, for the caller to record as a gap."""
        return self._delete(_ARRIVED_BEFORE, older_than_us)

    def _delete(self, statements: tuple[str, str], value: int) -> int:
        measure, delete = statements
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            size, count = db.execute(measure, (value,)).fetchone()
            if count:
                db.execute(delete, (value,))
                db.execute(
                    "UPDATE totals SET bytes = bytes - ?, frames = frames - ? WHERE id = 1",
                    (size, count),
                )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return int(count)

    # --- what it holds ------------------------------------------------------------

    def held(self) -> tuple[int, int]:
        """(bytes, frames) the spool holds now."""
        size, count = self._db.execute("SELECT bytes, frames FROM totals WHERE id = 1").fetchone()
        return int(size), int(count)

    def last_seq(self) -> int:
        """The highest sequence number ever appended (0: none yet), released or not."""
        return self._sequence()

    def _sequence(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'frames'").fetchone()
        return int(row[0]) if row else 0

    def oldest_us(self) -> int | None:
        """When the oldest frame held arrived, or None when empty."""
        (oldest,) = self._db.execute("SELECT MIN(arrived_us) FROM frames").fetchone()
        return None if oldest is None else int(oldest)
