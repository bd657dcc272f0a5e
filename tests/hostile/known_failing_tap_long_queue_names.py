"""KNOWN FAILING, not collected (its name is not test_*): a queue name past 247 bytes
stops the capture of its whole vhost.

The firehose routes a delivery as "deliver.<queue>": for a queue name of
248-255 bytes that routing key is longer than AMQP's 255-byte short string, and
the broker cannot deliver the trace message to the tap — it closes the tap's
connection with 541 INTERNAL_ERROR. The message stays at the head of the tap
queue, so every reconnection fails the same way and nothing more is captured
in that vhost.
"""

import pytest

from console.brokers import default_amqp_url
from tests.tracer.tapping import TapProcess, wait_for
from tracer import amqp
from tracer.models import Message

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_255_byte_queue_name_does_not_stop_the_capture(scratch_vhost):
    long_queue = "q" * 255
    with TapProcess(scratch_vhost) as tap:
        connection = amqp.blocking_connection(default_amqp_url(), vhost=scratch_vhost)
        channel = connection.channel()
        channel.queue_declare(long_queue)
        channel.basic_publish("", long_queue, b"to the long queue")
        assert channel.basic_get(long_queue, auto_ack=True)[0] is not None
        channel.basic_publish("", "nowhere", b"after")
        connection.close()
        wait_for(
            lambda: Message.objects.filter(vhost=scratch_vhost, body=b"after").exists(),
            timeout=15,
            message="the capture to go on after a delivery from a 255-byte queue",
        )
        assert "INTERNAL_ERROR" not in tap.output()
