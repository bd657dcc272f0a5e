"""The tap queue full (the tap stopped while a workload runs past x-max-length).

The broker is unharmed — no memory or disk alarm, the workload's own queue
gets every message, publishers are never blocked — the bounded tap queue
keeps its newest events, and when the tap comes back the drops are counted in
/api/tap/status and shown on the Messages page.
"""

import time

import pytest

from tests.polling import wait_until
from tests.tracer.tapping import TapProcess, client
from tracer.models import Message

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MAX_LENGTH = 100
PUBLISHED = 2000


def _depth(channel, queue):
    return channel.queue_declare(queue, passive=True).method.message_count


def test_it_drops_the_oldest_events_harmlessly_and_says_how_many(
    scratch_vhost, mgmt, viewer_client
):
    env = {"WARREN_TAP_QUEUE_MAX_LENGTH": str(MAX_LENGTH)}
    with TapProcess(scratch_vhost, env=env):
        pass  # declares the bounded tap queue and its binding, then stops

    connection = client(scratch_vhost)
    blocked = []  # what the broker says when an alarm stops its publishers
    connection.add_on_connection_blocked_callback(lambda _connection, frame: blocked.append(frame))
    channel = connection.channel()
    channel.queue_declare("orders")
    started = time.monotonic()
    for number in range(PUBLISHED):
        channel.basic_publish("", "orders", b"order %d" % number)
    publish_s = time.monotonic() - started
    assert wait_until(
        lambda: _depth(channel, "orders") == PUBLISHED,
        timeout=10,
        what=f"{PUBLISHED} messages in orders",
    )
    tap_depth = _depth(channel, "warren.tap")
    connection.process_data_events(time_limit=0)
    connection.close()

    # The broker watched is unharmed: every message where it belongs, no alarm,
    # the publisher never blocked.
    nodes = mgmt.nodes()
    assert nodes and not any(n.get("mem_alarm") or n.get("disk_free_alarm") for n in nodes)
    assert tap_depth == MAX_LENGTH
    assert blocked == [], f"the broker blocked the publisher: {blocked}"

    with TapProcess(scratch_vhost, env=env):
        wait_until(
            lambda: Message.objects.filter(vhost=scratch_vhost).count() == MAX_LENGTH,
            timeout=15.0,
            what=f"{MAX_LENGTH} events stored",
        )
        status = viewer_client.get("/api/tap/status").json()
        page = viewer_client.get("/messages/").content.decode()
    dropped = PUBLISHED - MAX_LENGTH
    print(
        f"\ntap queue full: {PUBLISHED} published in {publish_s:.2f} s, tap queue held "
        f"{tap_depth}, {dropped} dropped and counted {status['dropped']}, no alarm"
    )
    assert status["dropped"] == dropped
    assert f"{dropped} dropped" in page
    kept = sorted(int(bytes(b).split()[1]) for b in Message.objects.values_list("body", flat=True))
    assert kept == list(range(dropped, PUBLISHED))  # the newest were kept
