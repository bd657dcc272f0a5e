"""Queue and exchange names of 248-255 bytes do not stop the capture.

The firehose routes a delivery as "deliver.<queue>" and a publish as
"publish.<exchange>": for such names that routing key is longer than AMQP's
255-byte short string, the broker cannot deliver the trace message to the tap
and closes its connection with 541 INTERNAL_ERROR. The tap takes the message
through the management API instead (tracer/tap/rescue.py) and carries on.
"""

import pytest

from rabbit import amqp
from rabbit.brokers import default_amqp_url
from tests.polling import wait_until
from tests.tracer.tapping import TapProcess
from tracer.models import Message

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LONG_QUEUE = "q<script>" + "é" * 123  # 9 + 246 = 255 bytes
LONG_EXCHANGE = "x" * 255


def _bodies(vhost):
    return set(Message.objects.filter(vhost=vhost).values_list("body", flat=True))


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
        wait_until(
            lambda: Message.objects.filter(vhost=scratch_vhost, body=b"after 299").exists(),
            timeout=30,
            what="the capture to go on after a delivery from a 255-byte queue",
        )
        delivered = Message.objects.get(vhost=scratch_vhost, event="deliver")
        assert delivered.queue == LONG_QUEUE
        assert delivered.body == b"to the long queue"
        assert delivered.backlog  # its time is when it was taken, not when it was traced
        assert "took a trace message the broker cannot deliver" in tap.output()
    # 300 + 300 publishes to "nowhere", the publish to the long queue, its delivery.
    assert Message.objects.filter(vhost=scratch_vhost).count() == 602
    assert len(_bodies(scratch_vhost)) == 601


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
