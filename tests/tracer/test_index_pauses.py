"""Indexing gives way while the machine is busy, capture does not (tracer/tap/give_way.py).

A real tap on the real broker; the machine kept busy by one spinning process a
core. What the user sees: the tap status (/api/tap/status) and the Messages
page say indexing is paused, events are captured (in the spool) but not yet
stored, and all of them are stored once the machine is free again, or once the
oldest has waited WARREN_INDEX_PAUSE_MAX seconds.
"""

import pytest

from tests.busy_machine import busy_machine
from tests.polling import wait_until
from tests.tracer.tapping import TapProcess, client
from tracer.models import Message
from tracer.store.status import tap_status

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def publish(vhost, count, queue):
    connection = client(vhost)
    try:
        channel = connection.channel()
        channel.queue_declare(queue)
        for number in range(count):
            channel.basic_publish("", queue, f"message {number}".encode())
    finally:
        connection.close()


def stored(vhost):
    return Message.objects.filter(vhost=vhost).count()


def running_session(tap):
    session = tap.session()
    assert session is not None, tap.output()
    return session


def test_it_pauses_indexing_while_the_machine_is_busy_and_stores_everything_after(
    scratch_vhost, viewer_client
):
    with TapProcess(scratch_vhost, env={"WARREN_INDEX_PAUSE_MAX": "60"}) as tap:
        # An idle machine: stored at once, no pause.
        publish(scratch_vhost, 20, "before")
        wait_until(lambda: stored(scratch_vhost) == 20, 15, what="20 stored on an idle machine")
        assert tap_status(tracing=False)["index_paused"] is False

        with busy_machine():
            wait_until(lambda: running_session(tap).index_paused, 15, what="indexing to pause")
            publish(scratch_vhost, 200, "during")
            # Captured, durable in the spool, and not stored while the machine is busy.
            wait_until(
                lambda: running_session(tap).spool_frames >= 200, 15, what="200 in the spool"
            )
            status = tap_status(tracing=False)
            assert status["index_paused"] is True
            assert stored(scratch_vhost) == 20
            page = viewer_client.get("/messages/").content.decode()
            assert "indexing paused: the machine is busy" in page
            wait_until(
                lambda: tap_status(tracing=False)["index_lag_s"] >= 2, 15, what="the lag to grow"
            )
            assert stored(scratch_vhost) == 20

        wait_until(lambda: stored(scratch_vhost) == 220, 20, what="all 220 stored after")
        wait_until(lambda: not running_session(tap).index_paused, 5, what="indexing to resume")
        status = tap_status(tracing=False)
        assert status["index_paused_s"] >= 2
        assert "indexing paused" not in viewer_client.get("/messages/").content.decode()
        log = tap.output()
    assert "indexing pauses: the machine is busy: others use" in log
    assert "indexing resumes" in log


def test_it_stores_everything_once_the_oldest_waited_the_longest_pause(scratch_vhost):
    with (
        TapProcess(scratch_vhost, env={"WARREN_INDEX_PAUSE_MAX": "3"}) as tap,
        busy_machine(),
    ):
        wait_until(lambda: running_session(tap).index_paused, 15, what="indexing to pause")
        publish(scratch_vhost, 100, "during")
        wait_until(lambda: running_session(tap).spool_frames >= 100, 15, what="100 in the spool")
        # Still busy: stored once the oldest waited 3 s (checked once a second).
        wait_until(lambda: stored(scratch_vhost) == 100, 20, what="all 100 stored while busy")
        assert running_session(tap).index_lag_s < 10


def test_it_never_pauses_when_told_not_to(scratch_vhost):
    with TapProcess(scratch_vhost, env={"WARREN_INDEX_PAUSE_MAX": "0"}) as tap, busy_machine():
        publish(scratch_vhost, 100, "during")
        wait_until(lambda: stored(scratch_vhost) == 100, 15, what="all 100 stored while busy")
        assert running_session(tap).index_paused_s == 0
        assert "indexing pauses" not in tap.output()
