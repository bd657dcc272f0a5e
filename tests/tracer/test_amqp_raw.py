"""The tap's own AMQP consumer (rabbit/raw.py) against the real broker."""

import datetime
import decimal
import select
import time

import pytest

from rabbit import amqp
from rabbit.brokers import default_broker
from rabbit.raw import AMQPRawError, TraceConsumer
from tests.polling import wait_until
from tests.tracer.tapping import client

HEADERS = {
    "text": "plain",
    "unicode": "ünïcødé ✓ <script>",
    "int": 7,
    "negative": -123456789,
    "big": 1 << 40,
    "true": True,
    "false": False,
    "bytes": b"\x00\xff\xfe",
    "nested": {"a": [1, "two", {"three": 3}], "empty": {}},
    "list": ["a", 1, [2, 3], None],
    "none": None,
    "decimal": decimal.Decimal("1.25"),
    "when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
}


def _consume_all(vhost, queue, count, prefetch=100, timeout=10.0):
    consumer = TraceConsumer(default_broker().amqp_url(), vhost=vhost, name="test-raw").connect()
    consumer.consume(queue, prefetch)
    got = []

    def all_came():
        got.extend(consumer.poll(0.1))
        return len(got) >= count

    try:
        wait_until(all_came, timeout=timeout, interval=0, what=f"{count} deliveries from {queue}")
    except AssertionError:
        consumer.close()
        raise
    return consumer, got


def test_it_decodes_headers_bodies_and_routing_keys_as_pika_does(scratch_vhost):
    connection = client(scratch_vhost)
    channel = connection.channel()
    channel.queue_declare("raw-q")
    big_body = bytes(range(256)) * 3000  # several body frames
    bodies = [b"", b"small", big_body]
    for body in bodies:
        channel.basic_publish("", "raw-q", body, amqp.properties(headers=HEADERS))
    channel.basic_publish(
        "", "raw-q", b"props", amqp.properties(correlation_id="c1", reply_to="r", headers={"x": 1})
    )
    expected = []
    for _ in range(4):
        method, props, body = channel.basic_get("raw-q", auto_ack=False)
        expected.append((method.routing_key, props.headers, body))
    connection.close()  # unacked: all four go back to the queue

    consumer, got = _consume_all(scratch_vhost, "raw-q", 4)
    try:
        assert len(got) == 4
        for delivery, (routing_key, headers, body) in zip(got, expected, strict=True):
            assert delivery.routing_key.decode() == routing_key
            assert delivery.headers == headers
            assert delivery.body == body
            assert delivery.redelivered is True
            assert delivery.raw  # the encoded properties, kept for duplicate detection
    finally:
        consumer.close()


def test_it_acks_multiple_so_nothing_comes_back(scratch_vhost):
    connection = client(scratch_vhost)
    channel = connection.channel()
    channel.queue_declare("raw-ack")
    for number in range(50):
        channel.basic_publish("", "raw-ack", str(number).encode())
    consumer = TraceConsumer(default_broker().amqp_url(), vhost=scratch_vhost).connect()
    consumer.consume("raw-ack", 20)  # fewer than there are: acks make room for the rest
    got = []

    def all_came():
        batch = consumer.poll(0.1)
        if batch:
            got.extend(batch)
            consumer.ack(batch[-1].tag)
        return len(got) >= 50

    wait_until(all_came, timeout=10, interval=0, what="50 deliveries, acked as they came")
    assert [delivery.body for delivery in got] == [str(n).encode() for n in range(50)]
    consumer.close()
    time.sleep(0.2)
    assert channel.queue_declare("raw-ack", passive=True).method.message_count == 0
    connection.close()


def test_it_proves_an_ack_was_taken_before_the_connection_dies(scratch_vhost):
    connection = client(scratch_vhost)
    channel = connection.channel()
    channel.queue_declare("raw-proof")
    for number in range(10):
        channel.basic_publish("", "raw-proof", str(number).encode())
    consumer, got = _consume_all(scratch_vhost, "raw-proof", 10, prefetch=10)
    consumer.ack(got[-1].tag, confirm=True)
    wait_until(
        lambda: consumer.poll(0.1) == [] and consumer.acks_confirmed == 1,
        timeout=10,
        interval=0,
        what="the broker's answer to the Qos sent after the ack",
    )
    # Die without a goodbye (as a killed capture does): what the broker proved
    # it took stays taken, nothing comes back.
    consumer._socket().close()
    wait_until(
        lambda: channel.queue_declare("raw-proof", passive=True).method.consumer_count == 0,
        timeout=10,
        what="the broker to notice the dead connection",
    )
    assert channel.queue_declare("raw-proof", passive=True).method.message_count == 0
    connection.close()


def test_it_reports_a_missing_queue_and_a_deleted_one(scratch_vhost, mgmt):
    consumer = TraceConsumer(default_broker().amqp_url(), vhost=scratch_vhost).connect()
    try:
        consumer.consume("no-such-queue", 10)
    except AMQPRawError as error:
        assert "404" in str(error)
    else:
        raise AssertionError("consuming a missing queue must fail")
    finally:
        consumer.close()

    connection = client(scratch_vhost)
    connection.channel().queue_declare("raw-gone")
    connection.close()
    consumer = TraceConsumer(default_broker().amqp_url(), vhost=scratch_vhost).connect()
    consumer.consume("raw-gone", 10)
    mgmt.delete_queue(scratch_vhost, "raw-gone")
    try:
        with pytest.raises(AMQPRawError, match="cancelled"):
            wait_until(
                lambda: consumer.poll(0.1) is None,  # a list: never; polled until it raises
                timeout=5,
                interval=0,
                what="the cancelled consumer to be reported",
            )
    finally:
        consumer.close()


def test_it_stamps_a_frame_read_late_with_the_time_its_bytes_arrived(scratch_vhost):
    consumer = TraceConsumer(default_broker().amqp_url(), vhost=scratch_vhost).connect()
    connection = client(scratch_vhost)
    try:
        assert consumer.kernel_stamps  # Linux stamps packets as they arrive
        channel = connection.channel()
        channel.queue_declare("raw-late")
        consumer.consume("raw-late", 10)
        channel.basic_publish("", "raw-late", b"stamped")
        # The bytes are in the socket (however long the broker took on a busy
        # machine), then wait there while the reader is busy elsewhere.
        assert select.select([consumer.fileno()], [], [], 10)[0], "nothing came"
        time.sleep(0.3)
        read_us = time.time_ns() // 1000
        got = consumer.poll(1.0)
        assert [delivery.body for delivery in got] == [b"stamped"]
        waited_us = read_us - consumer.received_us
        assert waited_us > 200_000, f"stamped {waited_us} µs before it was read, not when it came"
    finally:
        connection.close()
        consumer.close()
