"""The database unavailable for 10 s while events arrive: nothing lost, no 500.

The shared PostgreSQL server is never stopped (others use it). Instead:
SQLite is locked by another writer (`BEGIN IMMEDIATE` held for 10 s on the
test database file); PostgreSQL has the tap's table locked (`LOCK TABLE ...
IN ACCESS EXCLUSIVE MODE` held for 10 s from another connection). Meanwhile
capture goes on reading: the events wait in its spool, acked, and the tap
queue stays empty; with a spool too small for them, capture stops acking
once it is full and the rest wait in the tap queue, and the gap is recorded.
Pages answer promptly (200, or 503 with the banner where they need the
locked table); afterwards every event is stored, once.
"""

import time

import pytest
from django.db import connection

from tests.faults.outage import LOCK_S, DatabaseLock, spooled, waiting_in_tap_queue
from tests.polling import wait_until
from tests.tracer.tapping import TapProcess, client
from tracer.models import Message, TapGap

# Serial: pages are timed against the lock, alone after the parallel run.
pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.django_db(transaction=True)]


def _publish(vhost, first, count):
    connection_ = client(vhost)
    channel = connection_.channel()
    for number in range(first, first + count):
        channel.basic_publish("", "nowhere", b"%d" % number)
    connection_.close()


def _timed_get(client_, path):
    started = time.monotonic()
    response = client_.get(path)
    return response, time.monotonic() - started


PAGES = ["/messages/", "/api/messages?limit=5", "/flows/", "/"]


def _readers(user):
    """One logged-in client per page (logging in writes: done before the lock)."""
    from django.test import Client

    readers = []
    for _ in PAGES:
        reader = Client()
        reader.force_login(user)
        readers.append(reader)
    return readers


def _read_pages(readers):
    """Each page read at once by its own client (a worker of its own), timed."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def read(pair):
        reader, path = pair
        try:
            return _timed_get(reader, path)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(len(PAGES)) as pool:
        return dict(zip(PAGES, pool.map(read, zip(readers, PAGES, strict=True)), strict=True))


@pytest.mark.parametrize("spool_max", [None, "32K"], ids=["spool", "spool-full"])
def test_it_keeps_events_in_the_spool_and_stores_them_all_after_the_outage(
    scratch_vhost, viewer, spool_max
):
    before, during = 50, 200
    env = {"WARREN_SPOOL_MAX": spool_max} if spool_max else {}
    tap = TapProcess(
        scratch_vhost, env=env, args=["--prefetch", "20", "--batch-size", "10"]
    ).start()
    lock = DatabaseLock()
    readers = _readers(viewer)
    try:
        _publish(scratch_vhost, 0, before)
        wait_until(
            lambda: Message.objects.filter(vhost=scratch_vhost).count() == before,
            timeout=15.0,
            what=f"{before} events stored before the lock",
        )
        lock.start()
        assert lock.ready.wait(10) and lock.error is None, lock.error
        locked_at = time.monotonic()
        _publish(scratch_vhost, before, during)

        if spool_max is None:
            # Captured and acked while nothing can be stored: they wait in the spool.
            wait_until(
                lambda: (
                    spooled(scratch_vhost) >= during and not waiting_in_tap_queue(scratch_vhost)
                ),
                timeout=8,
                what="the events to wait in the spool, the tap queue empty",
            )
        else:
            # The spool full (32 KiB, some 50 events): not acked, the rest wait on the broker.
            wait_until(
                lambda: waiting_in_tap_queue(scratch_vhost) >= during // 4,
                timeout=8,
                what="the events to wait in the tap queue once the spool is full",
            )
        pages = _read_pages(readers)
        assert not lock.released.is_set(), "the lock ended before the pages were read"
        assert tap.process.poll() is None
        assert time.monotonic() - locked_at < LOCK_S
        lock.join(LOCK_S + 5)
        for path, (response, elapsed) in pages.items():
            assert response.status_code in (200, 503), f"{path}: {response.status_code}"
            assert elapsed < 7.0, f"{path} held a worker {elapsed:.1f} s"
            if response.status_code == 503:
                if path.startswith("/api/"):
                    assert "database is not answering" in response.json()["error"]
                else:
                    assert "The database is not answering" in response.content.decode()
        if connection.vendor == "postgresql":
            # The Messages list needs the locked table: the banner, after lock_timeout.
            assert pages["/messages/"][0].status_code == 503
        waited = waiting_in_tap_queue(scratch_vhost)
        try:
            wait_until(
                lambda: Message.objects.filter(vhost=scratch_vhost).count() >= before + during,
                timeout=40,
                what="every event stored after the outage",
            )
        except AssertionError as error:
            stored = Message.objects.filter(vhost=scratch_vhost).count()
            raise AssertionError(
                f"{error}: {stored} stored; the tap said:\n{tap.output()}"
            ) from None
        print(
            f"\n{connection.vendor}: {waited} events waited in the tap queue during the lock; "
            + ", ".join(f"{p} {r.status_code} in {t:.2f} s" for p, (r, t) in pages.items())
            + f"; all {before + during} stored {time.monotonic() - locked_at:.1f} s after the lock"
        )
        time.sleep(0.5)
        assert tap.process.poll() is None
        assert waiting_in_tap_queue(scratch_vhost) == 0
    finally:
        if lock.ident is not None:
            lock.join(LOCK_S + 5)
        tap.stop()
    bodies = sorted(int(bytes(b)) for b in Message.objects.values_list("body", flat=True))
    assert bodies == list(range(before + during))  # every one, once
    full = TapGap.objects.filter(vhost=scratch_vhost, reason="spool full")
    assert full.exists() == (spool_max is not None)
    assert not TapGap.objects.filter(vhost=scratch_vhost, dropped__gt=0).exists()
