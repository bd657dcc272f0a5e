"""tracer.tap.spool: what is appended is there, in order, bounded, and survives a kill."""

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.polling import wait_until
from tests.small_disk import fill, small_disk
from tracer.tap.spool import Spool, SpooledFrame, SpoolFull, SpoolSlot

ROOT = Path(__file__).resolve().parents[2]


def frame(n, body=b"", arrived_us=None):
    return SpooledFrame(
        arrived_us=1_700_000_000_000_000 + n if arrived_us is None else arrived_us,
        stamp_error_us=n % 7,
        redelivered=n % 5 == 0,
        backlog=n % 2 == 0,
        routing_key=b"publish.",
        header=b"\x00\x00\x00\x00",
        body=body or b"%d" % n,
    )


@pytest.fixture
def spool(tmp_path):
    opened = Spool(tmp_path / "tap.spool", max_bytes=10_000)
    yield opened
    opened.close()


def test_it_gives_back_what_it_took_in_order(spool):
    first = spool.append([frame(n) for n in range(3)])
    last = spool.append([frame(n) for n in range(3, 10)])
    assert (first, last) == (3, 10)
    read = spool.read(after=0, limit=100)
    assert [seq for seq, _ in read] == list(range(1, 11))
    assert [f.body for _, f in read] == [b"%d" % n for n in range(10)]
    assert read[5][1] == frame(5)
    assert [seq for seq, _ in spool.read(after=4, limit=3)] == [5, 6, 7]


def test_it_refuses_a_batch_that_would_pass_its_bound_and_keeps_nothing_of_it(spool):
    spool.append([frame(0, body=b"x" * 6000)])
    with pytest.raises(SpoolFull, match="would pass its bound of 10,000"):
        spool.append([frame(1, body=b"y" * 100), frame(2, body=b"z" * 4000)])
    assert spool.held() == (6000 + 8 + 4, 1)
    assert [f.body[:1] for _, f in spool.read(0, 10)] == [b"x"]
    spool.mark_acked(1)
    assert spool.release(1) == 1
    assert spool.append([frame(2, body=b"z" * 4000)]) == 2  # room again; numbers go on
    assert spool.held() == (4000 + 12, 1)


def test_it_never_numbers_a_frame_twice_even_when_emptied(tmp_path):
    path = tmp_path / "tap.spool"
    spool = Spool(path, max_bytes=10_000)
    spool.append([frame(n) for n in range(4)], acked_upto=0)
    spool.mark_acked(4)
    spool.release(4)
    assert spool.held() == (0, 0)
    spool.close()
    reopened = Spool(path, max_bytes=10_000)
    assert reopened.last_seq() == 4
    assert reopened.append([frame(9)]) == 5
    assert [seq for seq, _ in reopened.read(0, 10)] == [5]
    reopened.close()


def test_it_expires_whole_appends_by_age_and_says_how_many(spool):
    spool.append([frame(n, arrived_us=1_000 + n) for n in range(3)])
    spool.append([frame(n, arrived_us=1_000 + n) for n in range(3, 5)])
    assert spool.oldest_us() == 1_000
    assert spool.expire(older_than_us=1_004) == 3  # the second append has a newer frame
    assert [f.arrived_us for _, f in spool.read(0, 10)] == [1_003, 1_004]
    assert spool.held()[1] == 2
    assert spool.oldest_us() == 1_003
    assert spool.expire(older_than_us=1_005) == 2
    assert spool.oldest_us() is None


WRITER = textwrap.dedent(
    """
    import sys
    from tracer.tap.spool import Spool, SpooledFrame
    spool = Spool(sys.argv[1], max_bytes=10**9)
    n = 0
    while True:
        frames = [SpooledFrame(n + i, 0, False, False, b"publish.", b"h" * 50, b"b" * 500)
                  for i in range(100)]
        last = spool.append(frames)
        n += 100
        print(last, flush=True)
    """
)


def test_what_was_committed_survives_a_sigkill_mid_append(tmp_path):
    path = tmp_path / "tap.spool"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        last_told = wait_until(
            lambda: int(writer.stdout.readline()),  # one line a commit
            check=lambda last: last >= 3000,
            timeout=30.0,
            interval=0,
            what="the writer to commit 3,000 frames",
        )
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    spool = Spool(path, max_bytes=10**9)
    held = spool.read(0, 10**6)
    assert [seq for seq, _ in held] == list(range(1, len(held) + 1))
    assert len(held) >= last_told  # everything it said was committed is there
    assert spool.held() == (len(held) * (8 + 50 + 500), len(held))
    spool.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()


def test_a_reader_in_another_process_follows_the_writer(tmp_path):
    path = tmp_path / "tap.spool"
    spool = Spool(path, max_bytes=10**6)
    reader = Spool(path, max_bytes=10**6)  # another connection, as an indexer has
    spool.append([frame(n) for n in range(5)])
    assert len(reader.read(0, 100)) == 5
    spool.append([frame(n) for n in range(5, 8)], acked_upto=5)
    assert [seq for seq, _ in reader.read(5, 100)] == [6, 7, 8]
    assert reader.release(6) == 5  # stored up to 6, but acked only up to 5
    spool.mark_acked(8)
    assert reader.release(6) == 0  # the second append is stored in part: it waits
    assert spool.held()[1] == 3
    assert reader.release(8) == 3
    assert spool.held() == (0, 0)
    spool.close()
    reader.close()


def test_it_keeps_what_was_not_acked_for_capture_to_recognise(spool):
    spool.append([frame(n) for n in range(3)])
    spool.append([frame(n) for n in range(3, 6)], acked_upto=3)  # the first commit was acked
    assert spool.acked_seq() == 3
    assert [seq for seq, _ in spool.unconfirmed()] == [4, 5, 6]
    assert spool.release(6) == 3  # stored, but 4-6 may come again from the broker
    assert [f.body for _, f in spool.unconfirmed()] == [b"3", b"4", b"5"]
    spool.mark_acked(6)
    assert spool.unconfirmed() == []
    assert spool.release(6) == 3


def test_it_gives_each_running_tap_a_spool_file_of_its_own(tmp_path):
    first = SpoolSlot(tmp_path, "/")
    second = SpoolSlot(tmp_path, "/")
    other = SpoolSlot(tmp_path, "a/b c")
    assert first.path.name == "%2F.0.spool"
    assert second.path.name == "%2F.1.spool"
    assert other.path.name == "a%2Fb%20c.0.spool"
    first.release()
    again = SpoolSlot(tmp_path, "/")  # a tap started after the first ended takes its spool
    assert again.path == first.path
    for slot in (second, other, again):
        slot.release()


def test_it_refuses_appends_before_its_disk_is_full_and_can_still_release():
    # A real disk of 24 MiB: the spool says "full" while releasing still has
    # room; on a disk full to the last byte SQLite could not even delete.
    with small_disk(24) as folder:
        spool = Spool(folder / "tap.spool", max_bytes=1 << 40, disk_reserve=2 << 20)
        try:
            appended = 0
            with pytest.raises(SpoolFull, match="the spool's disk has [0-9,]+ bytes free"):
                while True:  # sqlite3's "database or disk is full" would fail the test
                    spool.mark_acked(spool.append([frame(n, body=b"x" * 20_000) for n in range(8)]))
                    appended += 8
            assert appended > 100  # most of the disk was used first
            assert spool.held()[1] == appended  # nothing of the refused append
            assert spool.release(spool.last_seq()) == appended
            assert spool.held() == (0, 0)
            # What was freed takes new frames again, on the same full-sized disk.
            for _ in range(appended // 16):
                spool.mark_acked(spool.append([frame(n, body=b"y" * 20_000) for n in range(8)]))
            assert spool.held()[1] == 8 * (appended // 16)
        finally:
            spool.close()


def test_it_says_the_disk_is_full_and_releases_once_space_is_freed():
    # A disk filled to the last byte by someone else: the error says so (not
    # a failed rollback), and once the space is back the same spool goes on.
    with small_disk(4) as folder:
        spool = Spool(folder / "tap.spool", max_bytes=1 << 40, disk_reserve=0)
        try:
            with pytest.raises(SpoolFull):
                while True:
                    spool.mark_acked(spool.append([frame(n, body=b"x" * 20_000) for n in range(8)]))
            held = spool.held()[1]
            ballast = fill(folder, leave_bytes=0)
            with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
                spool.release(spool.last_seq())
            assert not spool._db.in_transaction
            assert spool.held()[1] == held  # nothing half-released
            ballast.unlink()
            assert spool.release(spool.last_seq()) == held
            assert spool.held() == (0, 0)
        finally:
            spool.close()


def test_it_reads_an_append_in_parts_from_any_position(spool):
    spool.append([frame(n) for n in range(4)])
    spool.append([frame(n) for n in range(4, 10)])
    parts = [spool.read(0, 3), spool.read(3, 3), spool.read(6, 3), spool.read(9, 3)]
    assert [[seq for seq, _ in part] for part in parts] == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]
    assert [f.body for part in parts for _, f in part] == [b"%d" % n for n in range(10)]
    assert spool.read(10, 3) == []
    assert spool.arrived_after(5) == frame(5).arrived_us
    assert spool.arrived_after(10) is None


def test_it_keeps_every_field_of_a_frame_byte_for_byte(spool):
    odd = SpooledFrame(
        arrived_us=2**62,
        stamp_error_us=123_456,
        redelivered=True,
        backlog=False,
        routing_key=b"deliver.\xff\x00 q",
        header=bytes(range(256)),
        body=b"",
    )
    spool.append([frame(1), odd, frame(3)])
    assert [f for _, f in spool.read(1, 1)] == [odd]


OLD_LAYOUT = """
CREATE TABLE frames (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, arrived_us INTEGER NOT NULL,
    stamp_error_us INTEGER NOT NULL, redelivered INTEGER NOT NULL, backlog INTEGER NOT NULL,
    routing_key BLOB NOT NULL, header BLOB NOT NULL, body BLOB NOT NULL
);
CREATE TABLE totals (id INTEGER PRIMARY KEY CHECK (id = 1), bytes INTEGER NOT NULL,
    frames INTEGER NOT NULL);
CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1), spool_id TEXT NOT NULL,
    acked_seq INTEGER NOT NULL);
"""


def write_old_spool(path, frames):
    old = sqlite3.connect(path)
    old.executescript(OLD_LAYOUT)
    old.executemany(
        "INSERT INTO frames (arrived_us, stamp_error_us, redelivered, backlog, routing_key, "
        "header, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(f.arrived_us, f.stamp_error_us, f.redelivered, f.backlog, f.routing_key, f.header,
          f.body) for f in frames],
    )  # fmt: skip
    return old


def test_it_moves_an_earlier_versions_frames_into_its_rows_numbers_kept(tmp_path):
    path = tmp_path / "tap.spool"
    frames = [frame(n) for n in range(1, 8)]
    old = write_old_spool(path, frames)
    old.execute("DELETE FROM frames WHERE seq IN (1, 2, 5)")  # released, and one expired
    held = [f for n, f in enumerate(frames, 1) if n not in (1, 2, 5)]
    old.execute("INSERT INTO totals VALUES (1, ?, ?)", (sum(f.size for f in held), len(held)))
    old.execute("INSERT INTO meta VALUES (1, 'the-old-id', 4)")
    old.commit()
    old.close()

    spool = Spool(path, max_bytes=10**6)
    assert spool.spool_id == "the-old-id"
    assert [(seq, f) for seq, f in spool.read(0, 100)] == list(zip([3, 4, 6, 7], held, strict=True))
    assert [seq for seq, _ in spool.unconfirmed()] == [6, 7]
    assert spool.held() == (sum(f.size for f in held), 4)
    assert spool.append([frame(8)]) == 8  # numbers go on from the old ones
    spool.close()
    reopened = Spool(path, max_bytes=10**6)  # moved once: the old table is gone
    assert [seq for seq, _ in reopened.read(0, 100)] == [3, 4, 6, 7, 8]
    reopened.close()


OPENER = textwrap.dedent(
    """
    import sys, time
    from tracer.tap.spool import Spool
    # All at once; one that started later than that (a loaded machine) opens at once.
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    spool = Spool(sys.argv[1], max_bytes=10**9)
    print(len(spool.read(0, 10**6)), spool.last_seq())
    """
)


def test_processes_opening_an_earlier_versions_spool_at_once_all_find_it_moved(tmp_path):
    path = tmp_path / "tap.spool"
    old = write_old_spool(path, [frame(n, body=b"b" * 2000) for n in range(5000)])
    old.execute("INSERT INTO totals VALUES (1, 5000 * (8 + 4 + 2000), 5000)")
    old.execute("INSERT INTO meta VALUES (1, 'the-old-id', 0)")
    old.commit()
    old.close()
    outcomes, errors = _opened_at_once(path, 4)
    assert outcomes == [(0, "5000 5000\n")] * 4, errors


def _opened_at_once(path, count):
    """Open the spool at `path` in `count` processes at one instant: each one's
    (exit status, what it read), and what they wrote to stderr."""
    at = time.time() + 1.5
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(path), str(at)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(count)
    ]  # fmt: skip
    results = [opener.communicate(timeout=60) for opener in openers]
    outcomes = [(opener.returncode, out) for opener, (out, _) in zip(openers, results, strict=True)]
    return outcomes, [err for _, err in results if err]


def test_processes_opening_a_new_spool_at_once_all_open_it(tmp_path):
    # Capture and the feeder open a tap's first spool together. Putting a new
    # file in WAL mode, one of them was told "database is locked" at once
    # (in 14 of 120 openings by four processes at a time, before the fix).
    for attempt in range(6):
        outcomes, errors = _opened_at_once(tmp_path / f"new-{attempt}.spool", 4)
        assert outcomes == [(0, "0 0\n")] * 4, errors
