"""The capture spool: trace messages made durable on local disk, as they came, before an ack.

Capture (reading the tap queue at the broker's pace) and indexing (decoding,
pairing, storing) are to run apart, so that reading never waits on storing:
capture appends what it read here and acks the broker once the append is on
disk; indexers read it in order at their own pace and release what they have
stored. Nothing is decoded on the way in: a frame keeps its routing key, its
encoded properties and its body as bytes, with the moment its bytes arrived.
Each append (a commit of capture's, 100 ms of frames) is one row, its frames
packed together, and goes as a whole: released once all of it is stored,
expired once all of it is too old. A spool written by an earlier version (a
row a frame) is moved into rows when opened, its numbers kept.

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
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from tracer.tap.spool_rows import SpooledFrame, arrival_in_row, insert_row, pack_row, unpack_row

__all__ = ["DISK_RESERVE", "SLOTS", "Spool", "SpoolFull", "SpoolSlot", "SpooledFrame"]

_SCHEMA = """
-- One row an append (a commit of capture's): its frames packed together (see
-- tracer/tap/spool_rows.py). A row a frame cost capture more than reading and stamping them did.
CREATE TABLE IF NOT EXISTS batches (
    first_seq INTEGER PRIMARY KEY,  -- its frames are numbered first_seq..last_seq
    last_seq INTEGER NOT NULL,
    oldest_us INTEGER NOT NULL,  -- the earliest and latest arrival among its frames
    newest_us INTEGER NOT NULL,
    bytes INTEGER NOT NULL,  -- its frames' routing keys, headers and bodies
    stamps BLOB NOT NULL,  -- a frame's arrival and stamp error (µs), two int64 a frame
    flags BLOB NOT NULL,  -- a byte a frame: 1 redelivered, 2 backlog
    lengths BLOB NOT NULL,  -- a frame's routing key, header and body lengths: three uint32
    data BLOB NOT NULL  -- the frames' routing keys, headers and bodies, one after the other
);
CREATE INDEX IF NOT EXISTS batches_last_seq ON batches (last_seq);
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    bytes INTEGER NOT NULL,
    frames INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals (id, bytes, frames) VALUES (1, 0, 0);
-- spool_id: names this file's sequence in the database's positions (a new
-- file starts its numbers again); acked_seq: every frame up to it was acked;
-- last_seq: the highest sequence number ever given (numbers are never reused).
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    spool_id TEXT NOT NULL,
    acked_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0
);
"""
SLOTS = 64  # spool files per vhost on one machine: one per tap process reading it
# Disk space an append leaves free, for the indexers' releases (a release of a
# full window of small frames rewrites a few MiB of pages through the WAL).
DISK_RESERVE = 16 * 1024**2
ROW_OVERHEAD = 64  # bytes a frame takes beyond its routing key, header and body, at most
MOVE_CHUNK = 2000  # frames a row when an earlier version's spool is moved into rows

_MEASURE = "SELECT COALESCE(SUM(bytes), 0), COALESCE(SUM(last_seq - first_seq + 1), 0)"
_UP_TO_SEQ = (
    f"{_MEASURE} FROM batches WHERE last_seq <= ?",
    "DELETE FROM batches WHERE last_seq <= ?",
)
_ARRIVED_BEFORE = (
    f"{_MEASURE} FROM batches WHERE newest_us < ?",
    "DELETE FROM batches WHERE newest_us < ?",
)
_COLUMNS = "first_seq, last_seq, stamps, flags, lengths, data"


def _write_ahead_log(db: sqlite3.Connection, timeout_s: float) -> None:
    """Put the file in WAL mode (nothing to do once it is).

    SQLite does not always call its busy handler for this: a process opening
    the file while another one held it in the same instant (closing it, which
    checkpoints the log, or recovering it) was told "database is locked" at
    once, and capture and the feeder open one spool together at every start.
    So it is tried again until the busy timeout.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _upgrade_meta(db: sqlite3.Connection) -> None:
    """A spool written by an earlier version numbered frames in `sqlite_sequence`."""
    columns = [row[1] for row in db.execute("PRAGMA table_info(meta)")]
    if columns and "last_seq" not in columns:
        try:
            db.execute("ALTER TABLE meta ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0")
        except sqlite3.OperationalError:
            # Another process opening the same spool (capture, the feeder) added it first.
            columns = [row[1] for row in db.execute("PRAGMA table_info(meta)")]
            if "last_seq" not in columns:
                raise


def _move_frames_into_batches(db: sqlite3.Connection) -> None:
    """Move what an earlier version's spool holds (a row a frame, in `frames`)
    into rows of this one's, numbers kept, in one transaction: an upgrade
    loses nothing captured and not yet indexed."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'frames'").fetchone():
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'frames'").fetchone():
            db.execute("COMMIT")  # another process opening the same spool moved them
            return
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'frames'").fetchone()
        db.execute("UPDATE meta SET last_seq = MAX(last_seq, ?)", (row[0] if row else 0,))
        rows = db.execute(
            "SELECT seq, arrived_us, stamp_error_us, redelivered, backlog, routing_key, header, "
            "body FROM frames ORDER BY seq"
        )
        run: list[SpooledFrame] = []
        first = 0
        for seq, arrived, error, again, backlog, key, header, body in rows:
            if run and (seq != first + len(run) or len(run) >= MOVE_CHUNK):
                insert_row(db, first, pack_row(run))
                run = []
            if not run:
                first = seq
            run.append(SpooledFrame(arrived, error, bool(again), bool(backlog), key, header, body))
        if run:
            insert_row(db, first, pack_row(run))
        db.execute("DROP TABLE frames")
    except BaseException:
        _roll_back(db)
        raise
    db.execute("COMMIT")


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
        _write_ahead_log(self._db, busy_timeout_s)
        self._db.execute("PRAGMA synchronous = FULL")
        # Not zeroing every released page (some builds do by default): that
        # wrote each frame twice, and a release needed as much free disk as
        # it released. FAST still clears what shares a page being written.
        self._db.execute("PRAGMA secure_delete = FAST")
        _upgrade_meta(self._db)
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta (id, spool_id, acked_seq, last_seq) VALUES (1, ?, 0, 0)",
            (uuid.uuid4().hex,),
        )
        _move_frames_into_batches(self._db)
        (self.spool_id,) = self._db.execute("SELECT spool_id FROM meta").fetchone()
        self._unpacked: tuple[int, list[SpooledFrame]] | None = None  # the last row read

    def close(self) -> None:
        self._db.close()

    # --- capture's side ---------------------------------------------------------

    def append(self, frames: Sequence[SpooledFrame], acked_upto: int | None = None) -> int:
        """Write `frames` in one transaction, durably, as one row; the last one's
        sequence number.

        `acked_upto`: every frame up to this sequence number has been acked
        since the last append (recorded in the same commit, so it costs no
        second write). Raises SpoolFull, writing nothing, when they would pass
        `max_bytes` or leave the disk without room to release them.
        """
        if not frames:
            if acked_upto is not None:
                self.mark_acked(acked_upto)
            return self.last_seq()
        row = pack_row(frames)
        size = row.size
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
            last = insert_row(db, self._sequence() + 1, row)
            db.execute(
                "UPDATE meta SET last_seq = ?, acked_seq = MAX(acked_seq, ?)",
                (last, acked_upto or 0),
            )
            db.execute(
                "UPDATE totals SET bytes = bytes + ?, frames = frames + ? WHERE id = 1",
                (size, len(frames)),
            )
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
        return self._frames(after, limit)

    def _frames(self, after: int, limit: int | None = None) -> list[tuple[int, SpooledFrame]]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM batches WHERE last_seq > ? ORDER BY first_seq",  # noqa: S608
            (after,),
        )
        found: list[tuple[int, SpooledFrame]] = []
        for first, _last, *packed in rows:
            frames = self._unpack(first, packed)
            skip = max(0, after + 1 - first)
            taken = frames[skip:] if limit is None else frames[skip : skip + limit - len(found)]
            found += zip(range(first + skip, first + skip + len(taken)), taken, strict=True)
            if limit is not None and len(found) >= limit:
                break
        rows.close()
        return found

    def _unpack(self, first: int, packed: list[bytes]) -> list[SpooledFrame]:
        """A row's frames; the last row read is kept: an indexer reads a commit
        of capture's in several parts."""
        if self._unpacked is None or self._unpacked[0] != first:
            self._unpacked = (first, unpack_row(*packed))
        return self._unpacked[1]

    def release(self, upto: int) -> int:
        """Forget every append whose frames are all up to sequence number `upto`
        (stored elsewhere now) and acked too (capture still needs the others to
        recognise them if the broker delivers them again); how many frames went.
        An append partly stored waits until the rest of it is."""
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
        return self._frames(self.acked_seq())

    def expire(self, older_than_us: int) -> int:
        """Drop the appends whose every frame arrived before `older_than_us` (the
        age bound; an append spans COMMIT_EVERY_S of capture's), stored or not:
        how many frames went, for the caller to record as a gap."""
        return self._delete(_ARRIVED_BEFORE, older_than_us)

    def _delete(self, statements: tuple[str, str], value: int) -> int:
        measure, delete = statements
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            size, count = db.execute(measure, (value,)).fetchone()
            if count:
                db.execute(delete, (value,))
                self._unpacked = None
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
        (last,) = self._db.execute("SELECT last_seq FROM meta").fetchone()
        return int(last)

    def arrived_after(self, position: int) -> int | None:
        """When the first frame after `position` arrived (None: nothing waits):
        how far behind an indexer at `position` is."""
        row = self._db.execute(
            "SELECT first_seq, stamps FROM batches WHERE last_seq > ? ORDER BY first_seq LIMIT 1",
            (position,),
        ).fetchone()
        if row is None:
            return None
        first, stamps = row
        return arrival_in_row(stamps, position + 1 - first)

    def oldest_us(self) -> int | None:
        """When the oldest frame held arrived, or None when empty."""
        (oldest,) = self._db.execute("SELECT MIN(oldest_us) FROM batches").fetchone()
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
