"""RPC calls with bodies unique to each request and reply, for benchmarks/wire.py.

A server thread consumes `rpc_queue` (prefetch 1) and answers each request on
its reply_to with "reply:" + the request's body; the client sends `count`
calls at `rate` a second (or as fast as `in_flight` open calls allow, rate 0)
and waits for every reply on its exclusive callback queue.
"""

import threading
import time
import uuid
from typing import Any

from rabbit import amqp

QUEUE = "rpc_queue"


class Server(threading.Thread):
    def __init__(self, url: str, vhost: str) -> None:
        super().__init__(name="wire-rpc-server", daemon=True)
        self.url, self.vhost = url, vhost
        self.ready = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        connection = amqp.blocking_connection(self.url, vhost=self.vhost, name="wire-rpc-server")
        channel = connection.channel()
        channel.queue_declare(QUEUE)
        channel.basic_qos(prefetch_count=1)

        def answer(ch: Any, method: Any, props: Any, body: bytes) -> None:
            reply = amqp.properties(correlation_id=props.correlation_id)
            ch.basic_publish("", props.reply_to, b"reply:" + body, reply)
            ch.basic_ack(method.delivery_tag)

        channel.basic_consume(QUEUE, answer)
        self.ready.set()
        while not self.stopping.is_set():
            connection.process_data_events(time_limit=0.1)
        connection.close()


def calls(
    url: str, vhost: str, count: int, rate: float, in_flight: int = 1, timeout_s: float = 60.0
) -> list[tuple[bytes, bytes]]:
    """(request body, reply body) of each call answered; a server runs meanwhile."""
    server = Server(url, vhost)
    server.start()
    if not server.ready.wait(15):
        raise RuntimeError("the RPC server did not start")
    connection = amqp.blocking_connection(url, vhost=vhost, name="wire-rpc-client")
    channel = connection.channel()
    callback = channel.queue_declare("", exclusive=True).method.queue
    answered: dict[str, bytes] = {}
    channel.basic_consume(
        callback,
        lambda _ch, _m, props, body: answered.__setitem__(props.correlation_id, body),
        auto_ack=True,
    )
    run = uuid.uuid4().hex[:8]
    sent: dict[str, bytes] = {}
    started = time.monotonic()
    deadline = started + timeout_s
    try:
        for index in range(count):
            if rate:
                due = started + index / rate
                while time.monotonic() < due:
                    connection.process_data_events(time_limit=max(0.0, due - time.monotonic()))
            while len(sent) - len(answered) >= in_flight and time.monotonic() < deadline:
                connection.process_data_events(time_limit=0.01)
            correlation_id = f"{run}-{index}"
            body = f"call:{run}:{index}".encode()
            sent[correlation_id] = body
            channel.basic_publish(
                "", QUEUE, body, amqp.properties(correlation_id=correlation_id, reply_to=callback)
            )
        while len(answered) < len(sent) and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.05)
    finally:
        connection.close()
        server.stopping.set()
        server.join(5)
    return [(sent[key], answered[key]) for key in sent if key in answered]
