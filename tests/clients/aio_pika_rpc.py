"""aio-pika's own RPC pattern (aio_pika.patterns.RPC): the server registers two
methods (a queue each, named after the method), the client calls them through
its callback queue. Requests carry type "call", replies "result"."""

import asyncio
import multiprocessing
import time
from typing import Any

import aio_pika
from aio_pika.patterns import RPC
from aiormq.connection import TCPTransportFactory

from tests.clients.calls import APART_S, ClientCall, vhost_url


class WireTimes(TCPTransportFactory):
    """The client connection's socket, timed: when the event loop last handed
    it bytes to send, and when it last took bytes that came. aiormq makes its
    socket through this factory (aiormq 7.2, pinned)."""

    written_at = received_at = 0.0

    async def create(self, url, **kwargs):  # type: ignore[no-untyped-def]
        reader, writer = await super().create(url, **kwargs)
        transport = writer.transport
        protocol = transport.get_protocol()
        write, data_received = transport.write, protocol.data_received

        def timed_write(data):  # type: ignore[no-untyped-def]
            write(data)
            self.written_at = time.perf_counter()

        def timed_data_received(data):  # type: ignore[no-untyped-def]
            self.received_at = time.perf_counter()
            data_received(data)

        transport.write = timed_write  # type: ignore[method-assign]
        protocol.data_received = timed_data_received  # type: ignore[attr-defined]
        return reader, writer


class WireTimedConnection(aio_pika.Connection):
    """An aio-pika connection whose socket is timed (WireTimes)."""

    wire = WireTimes()

    async def connect(self, timeout=None):  # type: ignore[no-untyped-def]
        self.kwargs["transport_factory"] = self.wire
        await super().connect(timeout)


class RecordingRPC(RPC):
    """RPC that remembers the correlation id of each call it makes, and when its
    request went out and its reply came in, at the socket: the client's
    stopwatch around the wire, without the library's pickling, frame parsing,
    tasks and future on either side (on a slow machine those alone came near
    the 2 ms the comparison allows)."""

    last_correlation_id = ""
    sent_at = arrived_at = 0.0
    wire: WireTimes

    def create_future(self):  # type: ignore[no-untyped-def]
        future, correlation_id = super().create_future()
        self.last_correlation_id = correlation_id
        return future, correlation_id

    async def on_result_message(self, message):  # type: ignore[no-untyped-def]
        # Nothing is written between a call's publish (one write: method, header
        # and body) and its reply, and its publisher confirm comes before the reply.
        self.sent_at, self.arrived_at = self.wire.written_at, self.wire.received_at
        await super().on_result_message(message)


async def multiply(*, x: int, y: int) -> int:
    return x * y


async def add(*, x: int, y: int) -> int:
    return x + y


async def _serve(url: str, ready: Any, stop: Any) -> None:  # multiprocessing Events
    """The server side, in a process of its own (as a service runs apart from its
    callers): the client then waits on nothing of it, not even the interpreter's
    lock (on a thread beside the client it made this client's figures the
    highest of the interop clients)."""
    connection = await aio_pika.connect(
        url, client_properties={"connection_name": "aio-pika server"}
    )
    try:
        server = await RPC.create(await connection.channel())
        await server.register("multiply", multiply, auto_delete=True)
        await server.register("add", add, auto_delete=True)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.02)
        await server.close()
    finally:
        await connection.close()


async def _call(url: str, calls: int) -> list[ClientCall]:
    connection = await aio_pika.connect(
        url,
        client_properties={"connection_name": "aio-pika client"},
        connection_class=WireTimedConnection,
    )
    try:
        client = await RecordingRPC.create(await connection.channel())
        client.wire = WireTimedConnection.wire
        done = []
        for index in range(calls):
            method = ("multiply", "add")[index % 2]
            answer = await asyncio.wait_for(client.call(method, {"x": index, "y": 3}), 10)
            client_ms = (client.arrived_at - client.sent_at) * 1000
            assert answer == (index * 3 if method == "multiply" else index + 3)
            done.append(ClientCall(client.last_correlation_id, method, client_ms))
            await asyncio.sleep(APART_S)  # light load: one call at a time, apart
        await client.close()
        return done
    finally:
        await connection.close()


def _server_process(url: str, ready: Any, stop: Any) -> None:
    asyncio.run(_serve(url, ready, stop))


def run(base_url: str, vhost: str, calls: int) -> list[ClientCall]:
    url = vhost_url(base_url, vhost)
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    server = context.Process(target=_server_process, args=(url, ready, stop), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the aio-pika server did not start")
        return asyncio.run(_call(url, calls))
    finally:
        stop.set()
        server.join(10)
        if server.is_alive():
            server.kill()
            server.join(5)
