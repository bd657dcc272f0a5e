"""Queue and exchange names of 248-255 bytes do not stop the capture.

The firehose routes a delivery as "deliver.<queue>" and a publish as
"publish.<exchange>": for such names that routing key is longer than AMQP's
255-byte short string, the broker cannot deliver the trace message to the tap
and closes its connection with 541 INTERNAL_ERROR. The tap takes the message
through the management API instead (tracer/tap/rescue.py) and carries on.
"""

import struct

import pytest

from rabbit import amqp
from rabbit.brokers import default_amqp_url
from rabbit.field_tables import AMQPRawError
from rabbit.frames import DeliveryParser
from tests.hostile.test_unreadable_headers import deliver_frames, encoded
from tests.polling import wait_until
from tests.tracer.tapping import TapProcess
from tracer.models import Message

pytestmark = [pytest.mark.django_db(transaction=True)]

LONG_QUEUE = "q<script>" + "é" * 123  # 9 + 246 = 255 bytes
LONG_EXCHANGE = "x" * 255


def _bodies(vhost):
    return set(Message.objects.filter(vhost=vhost).values_list("body", flat=True))


def _closed_by_broker(_channel: int, payload: bytes) -> None:
    assert payload[:4] == struct.pack(">HH", 10, 50)  # Connection.Close
    raise AMQPRawError("the broker closed the connection: 541 INTERNAL_ERROR")


def test_it_counts_the_deliveries_read_with_the_brokers_close_as_sent():
    # The broker's 541 comes in the same read as the deliveries before it. The
    # parse that raises on the close hands on none of them, yet the broker
    # counts them unacked and puts them back first: the next connection must
    # ask for every one (too few, and another 541 followed: up to eight in a
    # row on a busy machine).
    close = struct.pack(">HHH", 10, 50, 541) + b"\x0eINTERNAL_ERROR" + struct.pack(">HH", 0, 0)
    close_frame = struct.pack(">BHI", 1, 0, len(close)) + close + b"\xce"
    parser = DeliveryParser(decode_headers=False, on_method=_closed_by_broker)
    assert [delivery.tag for delivery in parser.parse(deliver_frames(1, encoded({}), b"a"))] == [1]
    read = b"".join(deliver_frames(tag, encoded({}), b"b") for tag in (2, 3, 4)) + close_frame
    with pytest.raises(AMQPRawError, match="541"):
        parser.parse(read)
    assert parser.last_tag == 4


@pytest.mark.slow
def test_it_stores_the_delivery_from_a_255_byte_queue_and_goes_on(scratch_vhost):
    assert len(LONG_QUEUE.encode()) == 255
    with TapProcess(scratch_vhost) as tap:
        connection = amqp.blocking_connection(default_amqp_url(), vhost=scratch_vhost)
        channel = connection.channel()
        channel.queue_declare(LONG_QUEUE)
        # Hundreds of events before and after: the tap has many in flight when
        # the broker fails, and must store every one of them exactly once.
        for number in range(300):
            channel.basic_publish("", "nowhere", f"before {number}".encode())
        channel.basic_publish("", LONG_QUEUE, b"to the long queue")
        assert channel.basic_get(LONG_QUEUE, auto_ack=True)[0] is not None
        for number in range(300):
            channel.basic_publish("", "nowhere", f"after {number}".encode())
        connection.close()
        try:
            wait_until(
                lambda: Message.objects.filter(vhost=scratch_vhost, body=b"after 299").exists(),
                timeout=30,
                what="the capture to go on after a delivery from a 255-byte queue",
            )
        except AssertionError as error:
            stored = Message.objects.filter(vhost=scratch_vhost).count()
            raise AssertionError(f"{error}\n{stored} stored; the tap:\n{tap.output()}") from None
        delivered = Message.objects.get(vhost=scratch_vhost, event="deliver")
        assert delivered.queue == LONG_QUEUE
        assert delivered.body == b"to the long queue"
        assert delivered.backlog  # its time is when it was taken, not when it was traced
        assert "took a trace message the broker cannot deliver" in tap.output()
    # 300 + 300 publishes to "nowhere", the publish to the long queue, its delivery.
    assert Message.objects.filter(vhost=scratch_vhost).count() == 602
    assert len(_bodies(scratch_vhost)) == 601


@pytest.mark.slow
def test_it_stores_a_publish_to_a_255_byte_exchange(scratch_vhost):
    with TapProcess(scratch_vhost) as tap:
        connection = amqp.blocking_connection(default_amqp_url(), vhost=scratch_vhost)
        channel = connection.channel()
        channel.exchange_declare(LONG_EXCHANGE, "fanout", auto_delete=False)
        channel.basic_publish(
            LONG_EXCHANGE,
            "key",
            b"\xff\x00 binary",
            amqp.properties(correlation_id="c-1", headers={"raw": b"\xff\xfe"}),
        )
        channel.basic_publish("", "nowhere", b"after")
        connection.close()
        wait_until(
            lambda: Message.objects.filter(vhost=scratch_vhost, body=b"after").exists(),
            timeout=30,
            what="the capture to go on after a publish to a 255-byte exchange",
        )
        published = Message.objects.get(vhost=scratch_vhost, exchange=LONG_EXCHANGE)
        assert published.body == b"\xff\x00 binary"
        assert published.correlation_id == "c-1"
        assert published.routing_key == "key"
        assert "took a trace message" in tap.output()
    assert Message.objects.filter(vhost=scratch_vhost).count() == 2
