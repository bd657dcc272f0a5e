"""Small RPC clients and servers for tap tests, through rabbit.amqp."""

import threading
import time
import uuid
from typing import Any

from rabbit import amqp
from tests.polling import wait_until
from tests.tracer.tapping import client


def sequential_calls(
    vhost,
    count,
    queue="rpc_queue",
    replies_per_call=1,
    direct=False,
    correlation=True,
    answer=True,
    pause_s=0.0,
):
    """Requests, fetched by a 'server' with basic.get, answered, replies fetched.

    Returns the correlation ids in order. All four events of each call are traced.
    `pause_s` between calls: longer than capture's commit interval, each call
    then reaches the spool in commits of its own.
    """
    connection = client(vhost)
    channel = connection.channel()
    channel.queue_declare(queue)
    if direct:
        channel.basic_consume("amq.rabbitmq.reply-to", lambda *a: None, auto_ack=True)
        reply_to = "amq.rabbitmq.reply-to"
    else:
        reply_to = channel.queue_declare("", exclusive=True).method.queue
    ids = []
    for index in range(count):
        if index and pause_s:
            connection.sleep(pause_s)
        corr = uuid.uuid4().hex if correlation else None
        ids.append(corr)
        channel.basic_publish(
            "", queue, b"%d" % index, amqp.properties(correlation_id=corr, reply_to=reply_to)
        )
        method, props, body = channel.basic_get(queue, auto_ack=True)
        assert method is not None
        if not answer:
            continue
        for copy in range(replies_per_call):
            channel.basic_publish(
                "",
                props.reply_to,
                body + b"!" * (copy + 1),
                amqp.properties(correlation_id=props.correlation_id),
            )
        if not direct:
            for _ in range(replies_per_call):
                wait_until(
                    lambda: channel.basic_get(reply_to, auto_ack=True)[0] is not None,
                    timeout=5,
                    interval=0,
                    what="the reply",
                )
    if direct:
        connection.process_data_events(0.2)
    connection.close()
    return ids


class EchoServer(threading.Thread):
    """Consumes `queue` and answers every request at once (prefetch 1)."""

    def __init__(self, vhost, queue="rpc_queue"):
        super().__init__(daemon=True)
        self.vhost, self.queue = vhost, queue
        self.ready = threading.Event()
        self.stopping = threading.Event()

    def run(self):
        connection = client(self.vhost, name="warren-test-server")
        channel = connection.channel()
        channel.queue_declare(self.queue)
        channel.basic_qos(prefetch_count=1)

        def on_request(ch, method, props, body):
            ch.basic_publish(
                "", props.reply_to, body, amqp.properties(correlation_id=props.correlation_id)
            )
            ch.basic_ack(method.delivery_tag)

        channel.basic_consume(self.queue, on_request)
        self.ready.set()
        while not self.stopping.is_set():
            connection.process_data_events(time_limit=0.05)
        connection.close()

    def stop(self):
        self.stopping.set()
        self.join(5)


class PikaSocketTimes:
    """A pika connection's stopwatch at its socket: from the last bytes sent to the
    first bytes received after them (pika 1.3's transport sends and receives through
    two functions, replaced here on the one transport). Timed there, the client's
    stopwatch leaves out pika's framing, callbacks and the wait for the GIL (the
    echo server is a thread of this process): on a busy host those alone came to
    several milliseconds at the median, more than the comparison allows."""

    def __init__(self, connection: Any) -> None:
        self.sent_at = 0.0
        self.received_at = 0.0
        self._waiting = False
        transport = connection._impl._transport
        send, recv = transport._sigint_safe_send, transport._sigint_safe_recv

        def timed_send(sock: Any, data: bytes) -> int:
            sent = send(sock, data)
            self.sent_at = time.perf_counter()
            self._waiting = True
            return sent

        def timed_recv(sock: Any, max_bytes: int) -> bytes:
            data = recv(sock, max_bytes)
            if data and self._waiting:
                self.received_at = time.perf_counter()
                self._waiting = False
            return data

        transport._sigint_safe_send, transport._sigint_safe_recv = timed_send, timed_recv

    @property
    def round_trip_ms(self) -> float:
        return (self.received_at - self.sent_at) * 1000.0


def timed_calls(vhost, count, queue="rpc_queue", pause_s=0.01):
    """Calls through a consumer on an exclusive callback queue, each timed by the client
    at its socket (PikaSocketTimes).

    Returns {correlation id: milliseconds from request sent to reply received}.
    """
    connection = client(vhost)
    channel = connection.channel()
    callback = channel.queue_declare("", exclusive=True).method.queue
    wire = PikaSocketTimes(connection)
    waiting = set()
    measured = {}

    def on_reply(ch, method, props, body):
        if props.correlation_id in waiting:
            waiting.discard(props.correlation_id)
            measured[props.correlation_id] = wire.round_trip_ms

    channel.basic_consume(callback, on_reply, auto_ack=True)
    for _ in range(count):
        corr = uuid.uuid4().hex
        waiting.add(corr)
        channel.basic_publish(
            "", queue, b"ping", amqp.properties(correlation_id=corr, reply_to=callback)
        )
        deadline = time.monotonic() + 5
        while corr in waiting and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.005)
        time.sleep(pause_s)
    connection.close()
    return measured
