"""tracer.tap.rescue: a trace message read through the management API becomes an event."""

import pytest

from rabbit import amqp
from rabbit.brokers import default_amqp_url
from tests.polling import wait_until
from tracer.tap import rescue
from tracer.tap.queue import declare_tap_queue

LONG_QUEUE = "l" * 250


@pytest.fixture
def traced_queue(scratch_vhost, mgmt):
    """A tap-like queue on the trace exchange of a traced scratch vhost."""
    mgmt.set_tracing(scratch_vhost, True)
    connection = amqp.blocking_connection(default_amqp_url(), vhost=scratch_vhost)
    channel = connection.channel()
    declare_tap_queue(channel, "tapq", max_length=1000, max_bytes=10_000_000)
    yield scratch_vhost, channel
    connection.close()


def _wait_depth(mgmt, vhost, queue, count):
    wait_until(
        lambda: len(mgmt.peek(vhost, queue, count=count + 1)) >= count,
        timeout=10,
        interval=0.1,
        what=f"{count} messages in {queue}",
    )


def test_it_rebuilds_the_event_with_binary_headers_and_body(traced_queue, mgmt):
    vhost, channel = traced_queue
    channel.queue_declare(LONG_QUEUE)
    properties = amqp.properties(
        correlation_id="c-9", reply_to="replies", headers={"raw": b"\xff\x00", "n": 7}
    )
    channel.basic_publish("", LONG_QUEUE, b"\x00\xffbody", properties)
    assert channel.basic_get(LONG_QUEUE, auto_ack=True)[0] is not None
    _wait_depth(mgmt, vhost, "tapq", 2)
    publish, deliver = mgmt.peek(vhost, "tapq", count=2, encoding="base64")
    assert not rescue.undeliverable(publish)  # "publish." fits
    assert rescue.undeliverable(deliver)  # "deliver." + 250 bytes does not

    event = rescue.captured(deliver, 1_700_000_000_000_000, body_limit=65536)
    assert event.event == "deliver"
    assert event.queue == LONG_QUEUE
    assert event.vhost == vhost
    assert event.body == b"\x00\xffbody"
    assert event.correlation_id == "c-9"
    assert event.reply_to == "replies"
    assert '"n":7' in event.properties_json
    assert '"$bytes":"/wA="' in event.properties_json  # the "Not UTF-8" text became bytes again
    assert event.backlog
    assert event.captured_us == 1_700_000_000_000_000


def test_it_keeps_the_real_size_of_a_body_cut_by_the_management_api(traced_queue, mgmt):
    vhost, channel = traced_queue
    channel.basic_publish("", "nowhere", b"x" * 5000)
    _wait_depth(mgmt, vhost, "tapq", 1)
    [message] = mgmt.peek(vhost, "tapq", count=1, truncate=100, encoding="base64")
    event = rescue.captured(message, 1, body_limit=100)
    assert event.body == b"x" * 100
    assert event.body_size == 5000
    assert event.body_truncated


def test_it_stores_then_removes_only_an_undeliverable_head(traced_queue, mgmt):
    vhost, channel = traced_queue
    channel.queue_declare(LONG_QUEUE)
    channel.basic_publish("", "nowhere", b"first")
    _wait_depth(mgmt, vhost, "tapq", 1)
    stored = []
    taken = rescue.rescue_head(mgmt, vhost, "tapq", 65536, stored.append, lambda: 5)
    assert (taken, stored) == (0, [])  # a deliverable head stays where it is
    channel.basic_get("tapq", auto_ack=True)  # the publish of "first"

    channel.basic_publish("", LONG_QUEUE, b"long")
    channel.basic_get(LONG_QUEUE, auto_ack=True)
    channel.basic_get("tapq", auto_ack=True)  # its publish: deliverable
    _wait_depth(mgmt, vhost, "tapq", 1)
    taken = rescue.rescue_head(mgmt, vhost, "tapq", 65536, stored.append, lambda: 5)
    assert taken == 1
    assert [(event.event, event.queue, event.body) for event in stored] == [
        ("deliver", LONG_QUEUE, b"long")
    ]
    assert mgmt.peek(vhost, "tapq", count=5) == []
