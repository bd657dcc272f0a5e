"""What a client saw of each call: the correlation id, the service Warren should name,
and the client's stopwatch around the wire (from its request written to its socket
to the reply's first bytes read from it)."""

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from amqp.transport import TCPTransport

# Between two calls: well past capture's commit interval (100 ms) and the indexing
# after it, so each call's round trip runs while the tap is idle, the light load
# the comparison is about. At 20 ms apart the tap indexed one call during the
# next, and the client's wake-ups waited for a core (medians of 1.8 ms on a slow
# day, the broker's and the tap's stamps unmoved).
APART_S = 0.15


@dataclass(frozen=True)
class ClientCall:
    correlation_id: str
    service: str
    client_ms: float
    warm_up: bool = False  # opened the client's connections: not compared for timing


def vhost_url(base_url: str, vhost: str) -> str:
    """The AMQP URL `base_url` with `vhost` as its path."""
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


class SocketTimes:
    """The client's stopwatch at its sockets, for the py-amqp clients (kombu,
    Celery; py-amqp 5.4 pinned), whose TCP transport reads and writes each
    connection's socket through two functions it sets up for it.

    `round_trip_s`: from the last send to the first bytes read after it, taken
    when those bytes come (an ack sent after the reply cannot move it). Timed
    there, the client's stopwatch leaves out what the libraries do on either
    side (building and parsing frames, callbacks): that alone came to 1.5-2 ms
    at the median on a slow day, the whole of what the comparison allows.
    """

    def __init__(self) -> None:
        self.sent_at = 0.0
        self.round_trip_s = 0.0
        self._waiting = False

    def watch(self, transport: Any) -> None:
        """Time this transport's socket from now on."""
        send, recv = transport._write, transport._quick_recv

        def timed_send(data: bytes) -> None:
            send(data)
            self.sent_at = time.perf_counter()
            self._waiting = True

        def timed_recv(size: int) -> bytes:
            data = recv(size)
            if self._waiting:
                self.round_trip_s = time.perf_counter() - self.sent_at
                self._waiting = False
            return data

        transport._write, transport._quick_recv = timed_send, timed_recv

    @contextlib.contextmanager
    def every_new_connection(self) -> Iterator["SocketTimes"]:
        """Time every py-amqp connection opened in this process meanwhile (for a
        library that opens its own, as Celery does)."""
        setup = TCPTransport._setup_transport

        def timed_setup(transport: Any) -> None:
            setup(transport)
            self.watch(transport)

        TCPTransport._setup_transport = timed_setup  # type: ignore[method-assign]
        try:
            yield self
        finally:
            TCPTransport._setup_transport = setup  # type: ignore[method-assign]
