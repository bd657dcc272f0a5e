"""What the kombu-written clients share: the service on a thread of its own, and the
caller's reply queue read by correlation id."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

# answer(producer, body, message): publish the reply to one request (acked after).
Answer = Callable[[Producer, Any, Any], None]


class Server(threading.Thread):
    """Consumes `queue` one request at a time and answers each, until stopped."""

    def __init__(self, url: str, queue: Queue, answer: Answer, exchange: Exchange | None) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.queue = queue
        self.answer = answer
        self.exchange = exchange
        self.ready = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        with Connection(self.url) as connection:
            producer = Producer(connection.channel(), exchange=self.exchange)

            def on_request(body, message):  # type: ignore[no-untyped-def]
                self.answer(producer, body, message)
                message.ack()

            with Consumer(connection, [self.queue], callbacks=[on_request], prefetch_count=1):
                self.ready.set()
                while not self.stopping.is_set():
                    try:
                        connection.drain_events(timeout=0.2)
                    except TimeoutError:
                        continue


@contextmanager
def serving(
    url: str, queue: Queue, answer: Answer, *, what: str, exchange: Exchange | None = None
) -> Iterator[None]:
    """The service running for the block's length; stopped after, whatever happened."""
    server = Server(url, queue, answer, exchange)
    server.start()
    assert server.ready.wait(10), f"the {what} server did not start"
    try:
        yield
    finally:
        server.stopping.set()
        server.join(10)


@contextmanager
def replies(connection: Connection, reply_queue: Queue) -> Iterator[Callable[[str], object]]:
    """The caller's reply queue consumed for the block's length: the block gets
    wait_for(correlation id), which drains until that reply is in and returns its body."""
    answers: dict[str, object] = {}

    def on_reply(body, message):  # type: ignore[no-untyped-def]
        answers[message.properties["correlation_id"]] = body
        message.ack()

    def wait_for(correlation_id: str) -> object:
        while correlation_id not in answers:
            connection.drain_events(timeout=10)
        return answers[correlation_id]

    with Consumer(connection, [reply_queue], callbacks=[on_reply]):
        yield wait_for
