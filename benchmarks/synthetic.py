"""Trace-shaped messages published straight into a tap queue (no RPC traffic needed),
or released into a traced vhost at a steady pace (stage).

Each call is the four events the firehose emits for a Fibonacci RPC call —
request publish, its delivery, reply publish, reply delivery — with the
headers the broker sets (exchange_name, routing_keys, properties, node, vhost,
connection, channel, user, routed_queues / redelivered) and the routing key
the tap sees (`publish.` / `deliver.<queue>`). They go through a topic
exchange bound to the tap queue, so the tap reads them exactly as it would
read the firehose. `clients` callback queues each keep `in_flight` calls
open, so a call's four events arrive spread out as in real traffic.
"""

import time
import uuid

from rabbit import amqp

EXCHANGE = "warren.bench.synthetic"
NODE = "rabbit@localhost"
SERVICE = "rpc_queue"


def _headers(vhost, routing_key, props, connection, publish, routed=None):
    headers = {
        "exchange_name": "",
        "routing_keys": [routing_key],
        "properties": props,
        "node": NODE,
        "vhost": vhost,
        "connection": connection,
        "channel": 1,
        "user": "guest",
    }
    if publish:
        headers["routed_queues"] = [routing_key] if routed is None else routed
    else:
        headers["redelivered"] = 0
    return headers


def call_events(vhost, client, call_id):
    """The four (routing key, headers, body) of one call by client number `client`."""
    reply_to = f"amq.gen-bench-{client:04d}"
    correlation_id = uuid.UUID(int=call_id).hex
    client_conn = f"127.0.0.1:{40000 + client} -> 127.0.0.1:5672"
    server_conn = "127.0.0.1:39999 -> 127.0.0.1:5672"
    request = {"reply_to": reply_to, "correlation_id": correlation_id}
    reply = {"correlation_id": correlation_id}
    body = b'{"n": 20}'
    answer = b'{"n": 20, "fibonacci": 6765}'
    return [
        ("publish.", _headers(vhost, SERVICE, request, client_conn, True), body),
        (f"deliver.{SERVICE}", _headers(vhost, SERVICE, request, server_conn, False), body),
        ("publish.", _headers(vhost, reply_to, reply, server_conn, True), answer),
        (f"deliver.{reply_to}", _headers(vhost, reply_to, reply, client_conn, False), answer),
    ]


def ordered_events(vhost, calls, clients=4, in_flight=20):
    """Events of `calls` calls, interleaved as `clients` x `in_flight` open calls would be."""
    window = clients * in_flight
    for start in range(0, calls, window):
        batch = [
            call_events(vhost, (start + offset) % clients, start + offset)
            for offset in range(min(window, calls - start))
        ]
        for step in range(4):
            for events in batch:
                yield events[step]


def prefill(url, vhost, queue, calls, clients=4, in_flight=20):
    """Publish the events of `calls` calls into `queue`; returns how many events."""
    connection = amqp.blocking_connection(url, vhost=vhost, name="warren-bench-prefill")
    try:
        channel = connection.channel()
        channel.exchange_declare(EXCHANGE, "topic", auto_delete=False)
        channel.queue_bind(queue, EXCHANGE, "#")
        count = 0
        for routing_key, headers, body in ordered_events(vhost, calls, clients, in_flight):
            channel.basic_publish(EXCHANGE, routing_key, body, amqp.properties(headers=headers))
            count += 1
        # A round trip, so every publish has reached the queue before we return.
        channel.queue_declare(queue, passive=True)
        channel.queue_unbind(queue, EXCHANGE, "#")
        channel.exchange_delete(EXCHANGE)
        return count
    finally:
        if connection.is_open:
            connection.close()


# --- released at a pace into a traced vhost -----------------------------------------

STAGE_QUEUE = "warren.bench.staged"
CALIBRATE_QUEUE = "warren.bench.calibrate"
TRACE_EXCHANGE = "amq.rabbitmq.trace"


class Staged:
    """Events waiting in the staging queue, each due at `start + n / events_per_s`
    (time.monotonic())."""

    def __init__(self, events, start, events_per_s):
        self.events = events
        self.start = start
        self.end = start + events / events_per_s


def publish_rate(url, vhost, events=2000):
    """Events a second this process publishes (into a throwaway queue, untraced)."""
    connection = amqp.blocking_connection(url, vhost=vhost, name="warren-bench-calibrate")
    try:
        channel = connection.channel()
        channel.queue_declare(CALIBRATE_QUEUE)
        started = time.monotonic()
        for _key, headers, body in ordered_events(vhost, events // 4):
            channel.basic_publish(
                "", CALIBRATE_QUEUE, body, amqp.properties(headers=headers, expiration="1")
            )
        channel.queue_declare(CALIBRATE_QUEUE, passive=True)
        rate = events / max(time.monotonic() - started, 1e-6)
        channel.queue_delete(CALIBRATE_QUEUE)
        return rate
    finally:
        if connection.is_open:
            connection.close()


def stage(url, vhost, calls, flows_per_s, lead_s, clients=4, in_flight=20):
    """The events of `calls` calls, released into the vhost's trace exchange at
    `flows_per_s` calls a second from `lead_s` seconds from now.

    A publish into a traced vhost is itself traced (and so is the delivery of
    anything that did not come from the trace exchange), so events published
    there while the tap runs would bring the firehose's own events about them.
    Instead they wait, published before tracing is on, in a queue whose
    dead-letter exchange is `amq.rabbitmq.trace`, each with a per-message TTL
    that makes it expire when it is due: the broker moves it into the tap queue
    then, neither the move (dead-lettering) nor the tap's delivery of a message
    of the trace exchange being traced. The tap reads them exactly as firehose
    events (with x-death headers beside the trace headers)."""
    events_per_s = 4 * flows_per_s
    connection = amqp.blocking_connection(url, vhost=vhost, name="warren-bench-stage")
    try:
        channel = connection.channel()
        channel.exchange_declare(EXCHANGE, "topic", auto_delete=False)
        channel.queue_declare(STAGE_QUEUE, arguments={"x-dead-letter-exchange": TRACE_EXCHANGE})
        channel.queue_bind(STAGE_QUEUE, EXCHANGE, "#")
        start = time.monotonic() + lead_s
        count = 0
        for routing_key, headers, body in ordered_events(vhost, calls, clients, in_flight):
            due_ms = (start + count / events_per_s - time.monotonic()) * 1000.0
            properties = amqp.properties(headers=headers, expiration=str(max(0, round(due_ms))))
            channel.basic_publish(EXCHANGE, routing_key, body, properties)
            count += 1
        channel.queue_declare(STAGE_QUEUE, passive=True)  # every publish is in
        return Staged(count, start, events_per_s)
    finally:
        if connection.is_open:
            connection.close()


def staged_left(url, vhost):
    """Events still waiting in the staging queue."""
    connection = amqp.blocking_connection(url, vhost=vhost, name="warren-bench-stage")
    try:
        return connection.channel().queue_declare(STAGE_QUEUE, passive=True).method.message_count
    finally:
        connection.close()
