"""The spool's disk full — a real one: a small tmpfs mounted as WARREN_SPOOL_DIR.

Two ways it fills: the spool fills it itself while the database is away (the
indexer cannot store, so it cannot release), or something else fills it. Either
way capture stops spooling before the disk's last byte (it keeps the room a
release needs), holds its acks and says so; the broker's bounded tap queue
takes over and drops its oldest, each one counted. Once the indexer releases,
or the space is freed, capture goes on. Afterwards every event published is
either stored, once, or counted as dropped, and both gaps are recorded. With the
disk filled by another file, capture is also SIGKILLed while it holds its acks:
the broker delivers those again, and the spool-full gap still starts when the
spool first was.
"""

import os
import signal
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from tests.faults.outage import DatabaseLock, waiting_in_tap_queue
from tests.polling import wait_until
from tests.small_disk import fill, free_bytes, small_disk
from tests.tracer.tapping import TapProcess, child_pids, client
from tracer.models import Message, TapGap
from tracer.tap.spool import DISK_RESERVE

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DISK_MIB = 48
BODY = 16 * 1024
ROUND = 500  # published at a time until the spool is full and the tap queue too (8 MiB)
MOST_PUBLISHED = 12_000  # 192 MiB of bodies: four times the disk
MAX_LENGTH = 400  # the tap queue's bound
PREFETCH = 200
CAPTURE = "tracer.tap.capture"


def _publish(vhost, first, count):
    connection_ = client(vhost)
    channel = connection_.channel()
    for number in range(first, first + count):
        channel.basic_publish("", "nowhere", b"%08d" % number + b"." * (BODY - 8))
    connection_.close()


def _stored_numbers(vhost):
    bodies = Message.objects.filter(vhost=vhost).values_list("body", flat=True)
    return sorted(int(bytes(body)[:8]) for body in bodies)


def _dropped_recorded(vhost):
    """Drops the gaps record: "tap queue full" while running; those counted when
    capture came back go with its "connection lost" gap."""
    return sum(TapGap.objects.filter(vhost=vhost).values_list("dropped", flat=True))


def _situation(disk, tap):
    """What a failure needs to say: the disk, the gaps, the tap's log."""
    gaps = list(TapGap.objects.values_list("reason", "dropped"))
    free = free_bytes(disk)
    return f"free on the spool's disk: {free:,} bytes; gaps: {gaps}\nthe tap:\n{tap.output()}"


def _logged(tap, text):
    """Whether the tap's whole log (output() is its tail) holds `text`."""
    return text in Path(tap.log.name).read_text(errors="replace")


def _problems(client_):
    return client_.get("/api/tap/status").json()["problems"]


@pytest.mark.parametrize("filled_by", ["the spool", "another file"])
def test_it_stops_acking_on_a_full_disk_and_accounts_for_every_event(
    scratch_vhost, viewer_client, filled_by
):
    with small_disk(DISK_MIB) as disk:
        env = {"WARREN_SPOOL_DIR": str(disk), "WARREN_TAP_QUEUE_MAX_LENGTH": str(MAX_LENGTH)}
        args = ["--prefetch", str(PREFETCH), "--batch-size", "200"]
        tap = TapProcess(scratch_vhost, env=env, args=args).start()
        lock = DatabaseLock(hold_s=180)
        ballast = None
        try:
            _publish(scratch_vhost, 0, 50)
            wait_until(
                lambda: Message.objects.filter(vhost=scratch_vhost).count() == 50,
                timeout=20,
                what="50 events stored before the disk fills",
            )
            if filled_by == "the spool":
                lock.start()  # nothing stored, so nothing released: the spool grows
                assert lock.ready.wait(10) and lock.error is None, lock.error
            else:
                ballast = fill(disk, leave_bytes=DISK_RESERVE // 2)
            # Until the spool is full, and then the tap queue, since capture holds
            # its acks. In rounds: how much capture spools before its disk is
            # full depends on how many the bounded tap queue dropped while
            # capture could not keep up (a fast publisher), so no one count
            # fills both every time.
            published = 50
            while not (
                _logged(tap, "the spool is full")
                and waiting_in_tap_queue(scratch_vhost) >= MAX_LENGTH
            ):
                assert published < MOST_PUBLISHED, (
                    f"{published} published, the spool and the tap queue not both full\n"
                    f"{_situation(disk, tap)}"
                )
                _publish(scratch_vhost, published, ROUND)
                published += ROUND
                time.sleep(0.5)
            if filled_by == "another file" or connection.vendor == "postgresql":
                wait_until(
                    lambda: any("the spool is full" in p for p in _problems(viewer_client)),
                    timeout=15,
                    what="the status to say the spool is full",
                )
            full_seen = timezone.now()
            free_when_full = free_bytes(disk)
            # The spool stopped with room left for releasing (SQLite cannot
            # even delete on a disk full to the last byte). Appends stop below
            # the reserve; its bookkeeping (acks marked, WAL pages) may still
            # write a little: 32 KiB past the ballast's edge once.
            assert free_when_full >= DISK_RESERVE // 4
            assert tap.process.poll() is None, tap.output()

            if filled_by == "the spool":
                lock.let_go()  # the indexer stores, the spool releases, capture goes on
                lock.join(30)
            else:
                (capture,) = child_pids(tap.process.pid, CAPTURE)
                os.kill(capture, signal.SIGKILL)
                wait_until(
                    lambda: child_pids(tap.process.pid, CAPTURE) not in ([], [capture]),
                    timeout=20,
                    what="another capture in its place",
                )
                ballast.unlink()
            try:
                wait_until(
                    lambda: (
                        Message.objects.filter(vhost=scratch_vhost).count()
                        + _dropped_recorded(scratch_vhost)
                        >= published
                    ),
                    timeout=120,
                    what="every event stored or counted as dropped",
                )
            except AssertionError as error:
                raise AssertionError(f"{error}\nthe tap:\n{tap.output()}") from None
            try:
                wait_until(
                    lambda: TapGap.objects.filter(
                        vhost=scratch_vhost, reason="spool full"
                    ).exists(),
                    timeout=15,
                    what="the spool-full gap recorded",
                )
            except AssertionError as error:
                raise AssertionError(f"{error}\n{_situation(disk, tap)}") from None
            # What the status page counts (written once a second) matches the gaps.
            counted = wait_until(
                lambda: viewer_client.get("/api/tap/status").json()["dropped"],
                check=lambda shown: shown == _dropped_recorded(scratch_vhost),
                timeout=10,
                what="the status to count the drops the gaps record",
            )
            assert tap.process.poll() is None, tap.output()
        finally:
            if lock.ident is not None:
                lock.let_go()
                lock.join(30)
            tap.stop()

    stored = _stored_numbers(scratch_vhost)
    dropped = _dropped_recorded(scratch_vhost)
    print(
        f"\n{connection.vendor}, disk filled by {filled_by}: {free_when_full:,} bytes left free; "
        f"{len(stored)} of {published} stored, {dropped} dropped by the tap queue and counted"
    )
    assert len(stored) == len(set(stored))  # none twice
    assert set(stored) <= set(range(published))
    assert len(stored) + dropped == published  # each one stored or counted
    assert dropped > 0  # the broker's bound took over
    assert counted == dropped
    assert not waiting_in_tap_queue(scratch_vhost)
    full = TapGap.objects.filter(vhost=scratch_vhost, reason="spool full").order_by("started_at")
    assert full[0].started_at <= full_seen  # from when it was full, whatever came after
