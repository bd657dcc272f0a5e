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
(`SpoolFull`; an empty spool takes one whatever its size), so capture stops
acking and the broker's bounded tap queue takes over; and in age: `expire`
drops what waited longer than the bound, and says how many, for the caller
to record as a gap.

The disk may fill before that bound (a small disk, or other files on it). An
SQLite file on a disk that is full to the last byte cannot even delete: a
release is a write too (to the WAL, then into the file), so nothing could ever
be freed. An append is therefore refused as well (`SpoolFull`) unless the disk
keeps room for it twice over (WAL, then file), for what the WAL holds still,
and `DISK_RESERVE` besides, which is what releasing needs; a release that
fails all the same leaves the frames where they were, for the next to take.
"""

import contextlib
import fcntl
import os
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

_SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: positions stay valid
    arrived_us INTEGER NOT NULL,
    stamp_error_us INTEGER NOT NULL,
    redelivered INTEGER NOT NULL,
    backlog INTEGER NOT NULL,
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
-- spool_id: names this file's sequence in the database's positions (a new
-- file starts its numbers again); acked_seq: every frame up to it was acked.
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    spool_id TEXT NOT NULL,
    acked_seq INTEGER NOT NULL
);
"""
SLOTS = 64  # spool files per vhost on one machine: one per tap process reading it
# Disk space an append leaves free, for the indexers' releases (a release of a
# full window of small frames rewrites a few MiB of pages through the WAL).
DISK_RESERVE = 16 * 1024**2
ROW_OVERHEAD = 64  # bytes a frame's row takes beyond its routing key, header and body


_MEASURE = "SELECT COALESCE(SUM(LENGTH(routing_key) + LENGTH(header) + LENGTH(body)), 0), COUNT(*)"
_UP_TO_SEQ = (f"{_MEASURE} FROM frames WHERE seq <= ?", "DELETE FROM frames WHERE seq <= ?")
_ARRIVED_BEFORE = (
    f"{_MEASURE} FROM frames WHERE arrived_us < ?",
    "DELETE FROM frames WHERE arrived_us < ?",
)


_INSERT = (
    "INSERT INTO frames (arrived_us, stamp_error_us, redelivered, backlog, "
    "routing_key, header, body) VALUES "
)
_ROW = "(?, ?, ?, ?, ?, ?, ?)"
_COLUMNS = 7
# Rows per INSERT, largest first: a few statement shapes, each compiled once
# (the connection caches them), and 256 rows' parameters stay far below
# SQLite's smallest limit on them (32,766; 999 before 3.32).
_GROUPS = (256, 32, 4, 1)
_INSERTS = {group: _INSERT + ", ".join([_ROW] * group) for group in _GROUPS}


def _insert(db: sqlite3.Connection, frames: "Sequence[SpooledFrame]") -> None:
    """Insert `frames` in order, many rows a statement.

    executemany() steps once a row, and each step lets go of the interpreter's
    lock and takes it back; in capture, whose reading thread wants that lock
    for every packet, those hand-overs were most of its system calls (strace)
    and a tenth of its time. Rows of one statement take their sequence numbers
    in the order written.
    """
    values = [
        value
        for f in frames
        for value in (
            f.arrived_us,
            f.stamp_error_us,
            f.redelivered,
            f.backlog,
            f.routing_key,
            f.header,
            f.body,
        )
    ]
    done = 0
    for group in _GROUPS:
        statement = _INSERTS[group]
        while len(frames) - done >= group:
            db.execute(statement, values[done * _COLUMNS : (done + group) * _COLUMNS])
            done += group


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


class SpoolFull(Exception):
    """An append would pass the spool's bound in bytes: nothing of it was written."""


class Spool:
    """One spool file. Several processes may open it: one appends, others read
    and release (each change is its own short transaction)."""

    def __init__(
        self,
        path: str | Path,
        max_bytes: int,
        busy_timeout_s: float = 5.0,
        disk_reserve: int = DISK_RESERVE,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.disk_reserve = disk_reserve
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        # Not zeroing every released page (some builds do by default): that
        # wrote each frame twice, and a release needed as much free disk as
        # it released. FAST still clears what shares a page being written.
        self._db.execute("PRAGMA secure_delete = FAST")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta (id, spool_id, acked_seq) VALUES (1, ?, 0)",
            (uuid.uuid4().hex,),
        )
        (self.spool_id,) = self._db.execute("SELECT spool_id FROM meta").fetchone()

    def close(self) -> None:
        self._db.close()

    # --- capture's side ---------------------------------------------------------

    def append(self, frames: Sequence[SpooledFrame], acked_upto: int | None = None) -> int:
        """Write `frames` in one transaction, durably; the last one's sequence number.

        `acked_upto`: every frame up to this sequence number has been acked
        since the last append (recorded in the same commit, so it costs no
        second write). Raises SpoolFull, writing nothing, when they would pass
        `max_bytes` or leave the disk without room to release them.
        """
        if not frames:
            if acked_upto is not None:
                self.mark_acked(acked_upto)
            return self.last_seq()
        size = sum(frame.size for frame in frames)
        self._check_disk(size + ROW_OVERHEAD * len(frames))
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            (held,) = db.execute("SELECT bytes FROM totals WHERE id = 1").fetchone()
            # An empty spool takes one append whatever its size: capture can
            # always go on, one batch past the bound at most.
            if held and held + size > self.max_bytes:
                raise SpoolFull(
                    f"the spool holds {held:,} bytes; {size:,} more would pass its bound "
                    f"of {self.max_bytes:,}"
                )
            _insert(db, frames)
            if acked_upto is not None:
                db.execute("UPDATE meta SET acked_seq = MAX(acked_seq, ?)", (acked_upto,))
            db.execute(
                "UPDATE totals SET bytes = bytes + ?, frames = frames + ? WHERE id = 1",
                (size, len(frames)),
            )
            last = self._sequence()
        except BaseException:
            _roll_back(db)
            raise
        db.execute("COMMIT")
        return last

    def _check_disk(self, size: int) -> None:
        """Refuse `size` more bytes unless the disk keeps room to release them."""
        disk = os.statvfs(self.path.parent)
        free = disk.f_bavail * disk.f_frsize
        # Released frames leave their pages free inside the file, for new ones;
        # what the WAL holds may still have to move into the file.
        (pages,) = self._db.execute("PRAGMA freelist_count").fetchone()
        (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
        try:
            wal = os.stat(f"{self.path}-wal").st_size
        except FileNotFoundError:
            wal = 0
        needed = 2 * size + wal + self.disk_reserve
        if free + pages * page_size < needed:
            raise SpoolFull(
                f"the spool's disk has {free:,} bytes free (and the spool {pages * page_size:,} "
                f"released); {size:,} more need {needed:,} (written twice, through the WAL, "
                f"its {wal:,} bytes checkpointed, and {self.disk_reserve:,} kept for releasing)"
            )

    # --- the indexers' side -------------------------------------------------------

    def read(self, after: int, limit: int) -> list[tuple[int, SpooledFrame]]:
        """Up to `limit` frames with a sequence number above `after`, in order."""
        return self._frames("seq > ? ORDER BY seq LIMIT ?", (after, limit))

    def _frames(self, where: str, parameters: tuple[int, ...]) -> list[tuple[int, SpooledFrame]]:
        query = (
            "SELECT seq, arrived_us, stamp_error_us, redelivered, backlog, "  # noqa: S608 - ours
            f"routing_key, header, body FROM frames WHERE {where}"
        )
        rows = self._db.execute(query, parameters).fetchall()
        return [
            (seq, SpooledFrame(arrived, error, bool(again), bool(backlog), key, header, body))
            for seq, arrived, error, again, backlog, key, header, body in rows
        ]

    def release(self, upto: int) -> int:
        """Forget every frame up to sequence number `upto` (stored elsewhere now)
        that was acked too (capture still needs the others to recognise them if
        the broker delivers them again); how many went."""
        return self._delete(_UP_TO_SEQ, min(upto, self.acked_seq()))

    # --- acks -------------------------------------------------------------------

    def mark_acked(self, upto: int) -> None:
        """Every frame up to `upto` has been acked (its own small commit)."""
        self._db.execute("UPDATE meta SET acked_seq = MAX(acked_seq, ?)", (upto,))

    def acked_seq(self) -> int:
        (acked,) = self._db.execute("SELECT acked_seq FROM meta").fetchone()
        return int(acked)

    def unconfirmed(self) -> list[tuple[int, SpooledFrame]]:
        """Frames made durable whose ack may never have reached the broker (a
        capture that died between the two): the broker delivers those again."""
        return self._frames("seq > ? ORDER BY seq", (self.acked_seq(),))

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
            _roll_back(db)
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

    def arrived_after(self, position: int) -> int | None:
        """When the first frame after `position` arrived (None: nothing waits):
        how far behind an indexer at `position` is."""
        row = self._db.execute(
            "SELECT arrived_us FROM frames WHERE seq > ? ORDER BY seq LIMIT 1", (position,)
        ).fetchone()
        return None if row is None else int(row[0])

    def oldest_us(self) -> int | None:
        """When the oldest frame held arrived, or None when empty."""
        (oldest,) = self._db.execute("SELECT MIN(arrived_us) FROM frames").fetchone()
        return None if oldest is None else int(oldest)


def _roll_back(db: sqlite3.Connection) -> None:
    """Undo a failed change. SQLite has undone it already after some errors (a
    full disk): a ROLLBACK then would raise, and hide the error that matters."""
    if db.in_transaction:
        db.execute("ROLLBACK")


class SpoolSlot:
    """The spool file of one tap process for one vhost, held with a lock.

    Several tap processes on one machine may read the same vhost (they share
    its tap queue): each holds a spool file of its own, `<vhost>.<n>.spool`
    with the first `n` whose lock is free. The lock goes with the process (even
    a SIGKILL releases it), so a tap started again finds the spool a dead one
    left, with whatever was captured but not yet indexed, and goes on from it.
    """

    def __init__(self, folder: str | Path, vhost: str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = quote(vhost, safe="") or "%2F"
        for slot in range(SLOTS):
            path = self.folder / f"{name}.{slot}.spool"
            descriptor = os.open(f"{path}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                continue
            self.path = path
            self._lock = descriptor
            return
        raise SpoolFull(f"all {SLOTS} spool files of vhost {vhost!r} are held by running taps")

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._lock)
