"""tracer.tap.feed: the feeder decodes the spool in order and lets go of what is stored,
even when the spool's disk is full to the last byte for a while."""

import threading
from multiprocessing import Pipe

import pytest

from tests.polling import wait_until
from tests.small_disk import fill, small_disk
from tracer.tap import feed
from tracer.tap.spool import Spool, SpooledFrame, SpoolFull


def _frame(number: int) -> SpooledFrame:
    return SpooledFrame(
        arrived_us=1_700_000_000_000_000 + number,
        stamp_error_us=0,
        redelivered=False,
        backlog=False,
        routing_key=b"publish.",
        header=b"\x00\x00",
        body=b"%08d" % number + b"x" * 20_000,
    )


def test_it_goes_on_decoding_while_its_disk_refuses_releases_and_releases_later():
    with small_disk(4) as folder:
        path = folder / "v.0.spool"
        writer = Spool(path, max_bytes=1 << 40, disk_reserve=0)
        count = 0
        with pytest.raises(SpoolFull):
            while True:
                writer.mark_acked(writer.append([_frame(count + n) for n in range(8)]))
                count += 8
        ballast = fill(folder, leave_bytes=0)
        ours, theirs = Pipe()
        feeder = threading.Thread(
            target=feed.run,
            args=(theirs, str(path), 1 << 40, 0, 0, 4096, "v", 0),
            daemon=True,
        )
        feeder.start()
        try:
            assert ours.recv() == (feed.READY,)
            decoded = []
            while len(decoded) < count:
                kind, pairs = ours.recv()
                assert kind == feed.EVENTS
                decoded += pairs
                ours.send((feed.STORED, pairs[-1][0]))  # the writer's commit
            assert [bytes(event.body[:8]) for _, event in decoded] == [
                b"%08d" % n for n in range(count)
            ]
            # The disk took no release: everything is still held, the feeder alive.
            threading.Event().wait(1.0)
            assert feeder.is_alive()
            assert writer.held()[1] == count
            ballast.unlink()
            wait_until(
                lambda: writer.held() == (0, 0), timeout=5, what="the stored frames released"
            )
        finally:
            ours.send((feed.CLOSE,))
            feeder.join(5)
            writer.close()
    assert not feeder.is_alive()


def test_it_reads_what_capture_committed_when_told_not_by_looking_again_and_again(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(feed, "LOOK_UNTOLD_S", 60.0)  # no untold look within this test
    writer = Spool(tmp_path / "v.0.spool", max_bytes=1 << 30)
    writer.append([_frame(n) for n in range(3)])  # what waits when the feeder starts
    ours, theirs = Pipe()
    feeder = threading.Thread(
        target=feed.run,
        args=(theirs, str(writer.path), 1 << 30, 0, 0, 4096, "v", 0),
    )
    feeder.daemon = True
    feeder.start()
    try:
        assert ours.recv() == (feed.READY,)
        # It looks once at its start, for what waits there; only then is the
        # next commit one it was not told of (else it might find it at that look).
        assert ours.poll(10), "what waited was not read at the start"
        kind, pairs = ours.recv()
        assert (kind, [seq for seq, _ in pairs]) == (feed.EVENTS, [1, 2, 3])
        last = writer.append([_frame(n) for n in range(3, 6)])  # a commit of capture's
        assert not ours.poll(0.5)  # untold, it does not look
        ours.send((feed.SPOOLED, last))  # the tap passes capture's word on
        assert ours.poll(10), "nothing decoded once told"
        kind, pairs = ours.recv()
        assert kind == feed.EVENTS
        assert [seq for seq, _ in pairs] == [4, 5, 6]
        assert [bytes(event.body[:8]) for _, event in pairs] == [b"%08d" % n for n in range(3, 6)]
    finally:
        ours.send((feed.CLOSE,))
        feeder.join(5)
        writer.close()
    assert not feeder.is_alive()
