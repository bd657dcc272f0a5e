"""Helpers for the replay tests: captured messages in the database, queues on the real broker."""

import uuid

from django.test import RequestFactory

from rabbit import amqp
from rabbit.brokers import default_amqp_url
from tests.polling import wait_until
from tracer.models import Message
from tracer.store import storage
from tracer.tap.decoding import decode
from tracer.times import now_us


def trace_event(
    vhost,
    exchange="",
    routing_key="q",
    body=b"{}",
    props=None,
    event="publish",
    queue=None,
    at_us=None,
    limit=65536,
):
    """One captured event, decoded from a frame shaped like the firehose's."""
    headers = {
        "exchange_name": exchange,
        "routing_keys": [routing_key],
        "properties": dict(props or {}),
        "node": "rabbit@localhost",
        "vhost": vhost,
        "connection": "127.0.0.1:50000 -> 127.0.0.1:5672",
        "channel": 1,
        "user": "guest",
    }
    if event == "publish":
        headers["routed_queues"] = [queue or routing_key]
        key = "publish." + exchange
    else:
        headers["redelivered"] = 0
        key = "deliver." + (queue or routing_key)
    return decode(key, headers, body, at_us or now_us(), limit)


def capture(vhost, **fields):
    """Stores one captured event and returns its Message row."""
    return capture_many([trace_event(vhost, **fields)])[0]


def capture_many(events):
    result = storage.store_batch(events)
    ids = list(range(result.first_id, result.last_id + 1))
    rows = Message.objects.in_bulk(ids)
    return [rows[number] for number in ids]


def operator_request(user):
    request = RequestFactory().post("/api/replays")
    request.user = user
    return request


class Broker:
    """A pika connection to one vhost, for setting up and checking queues."""

    def __init__(self, vhost):
        self.vhost = vhost
        url = default_amqp_url()
        self.connection = amqp.blocking_connection(url, vhost=vhost, name="replay test")
        self.channel = self.connection.channel()

    def queue(self, name=None, exchange=None, key=None, exchange_type="direct", arguments=None):
        name = name or f"replay-test-{uuid.uuid4().hex[:8]}"
        self.channel.queue_declare(name, arguments=arguments)
        if exchange:
            if not exchange.startswith("amq."):  # the broker's own exist already
                self.channel.exchange_declare(exchange, exchange_type=exchange_type)
            self.channel.queue_bind(name, exchange, routing_key=key or name)
        return name

    def depth(self, queue):
        return self.channel.queue_declare(queue, passive=True).method.message_count

    def wait_depth(self, queue, at_least, timeout_s=5.0):
        """The queue's depth once it is at least `at_least`."""
        return wait_until(
            lambda: self.depth(queue),
            check=lambda depth: depth >= at_least,
            timeout=timeout_s,
            what=f"{at_least} messages in {queue}",
        )

    def take(self, queue, limit=10_000):
        """Every message in the queue now, as (properties, body), removed from it."""
        taken = []
        while len(taken) < limit:
            method, props, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                break
            taken.append((props, body))
        return taken

    def publish(self, exchange, key, body, **props):
        self.channel.basic_publish(exchange, key, body, amqp.properties(**props))

    def close(self):
        if self.connection.is_open:
            self.connection.close()
