"""RPC load for the benchmarks: Fibonacci-shaped calls in a tight loop.

Servers consume the service queue and answer each request on its `reply_to`
with its correlation id; each client owns one exclusive callback queue and
keeps `in_flight` calls outstanding (or paces them at a fixed rate), as the
seed workload does, without its per-call sleep, so calls go as fast as the
broker and this machine allow. Each runs in a process of its own (spawned, so
nothing of Django or an open database connection is shared), bounded in time,
and niced: on this one machine they stand in for clients elsewhere, so the
broker and the tap are served first when the cores are busy.
"""

import multiprocessing
import os
import time
import uuid

from rabbit import amqp

SERVICE_QUEUE = "rpc_queue"
REQUEST_BODY = b'{"n": 20}'
REPLY_BODY = b'{"n": 20, "fibonacci": 6765}'


def _fibonacci(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


LOAD_NICENESS = 10  # clients and servers stand in for other machines: the broker and tap go first


def serve(url, vhost, queue, until, ready, prefetch=100, niceness=LOAD_NICENESS):
    """Answer requests until the monotonic deadline `until`."""
    os.nice(niceness)
    connection = amqp.blocking_connection(url, vhost=vhost, name="bench-rpc-server")
    channel = connection.channel()
    channel.queue_declare(queue)
    channel.basic_qos(prefetch_count=prefetch)

    def on_request(ch, method, properties, body):
        _fibonacci(20)
        ch.basic_publish(
            "",
            properties.reply_to,
            REPLY_BODY,
            amqp.properties(correlation_id=properties.correlation_id),
        )
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(queue, on_request)
    ready.set()
    while time.monotonic() < until:
        connection.process_data_events(time_limit=0.1)
    connection.close()


def call(
    url, vhost, queue, until, in_flight, rate, limit, results, record, start_at=0.0, niceness=10
):
    """Keep `in_flight` calls outstanding (or `rate` calls/s) until `until` or `limit` calls.

    Puts (calls answered, [(correlation id, wall start s, elapsed ms), ...]) on `results`.
    """
    os.nice(niceness)
    connection = amqp.blocking_connection(url, vhost=vhost, name="bench-rpc-client")
    channel = connection.channel()
    callback = channel.queue_declare("", exclusive=True).method.queue
    sent = {}
    done = [0]
    timings = []
    issued = [0]

    def send():
        correlation_id = uuid.uuid4().hex
        properties = amqp.properties(correlation_id=correlation_id, reply_to=callback)
        channel.basic_publish("", queue, REQUEST_BODY, properties)
        # The stopwatch starts once the request is on the wire (basic_publish has
        # written it) and stops when the reply is handed to the callback.
        sent[correlation_id] = (time.time(), time.perf_counter())
        issued[0] += 1

    def on_reply(ch, method, properties, body):
        received = time.perf_counter()
        started = sent.pop(properties.correlation_id, None)
        if started is None:
            return
        done[0] += 1
        if record:
            timings.append(
                (properties.correlation_id, started[0], (received - started[1]) * 1000.0)
            )
        if rate is None and time.monotonic() < until and (limit is None or issued[0] < limit):
            send()

    channel.basic_consume(callback, on_reply, auto_ack=True)
    while time.monotonic() < start_at:
        time.sleep(0.005)
    if rate is None:
        for _ in range(in_flight if limit is None else min(in_flight, limit)):
            send()
        while time.monotonic() < until and (limit is None or done[0] < limit):
            connection.process_data_events(time_limit=0.05)
    else:
        began = time.monotonic()
        while time.monotonic() < until and (limit is None or issued[0] < limit):
            due = began + issued[0] / rate
            wait = due - time.monotonic()
            if wait > 0:
                connection.process_data_events(time_limit=wait)
                continue
            send()
    # Let the last answers come in (bounded).
    settle = time.monotonic() + 5.0
    while sent and time.monotonic() < settle:
        connection.process_data_events(time_limit=0.05)
    connection.close()
    results.put((done[0], timings))


class RpcLoad:
    """Servers and clients in their own processes; `run()` returns calls answered."""

    def __init__(
        self,
        url,
        vhost,
        servers=2,
        clients=4,
        in_flight=20,
        rate=None,
        limit=None,
        prefetch=100,
        niceness=LOAD_NICENESS,
    ):
        self.prefetch = prefetch
        self.niceness = niceness
        self.url = url
        self.vhost = vhost
        self.servers = servers
        self.clients = clients
        self.in_flight = in_flight
        self.rate = rate
        self.limit = limit
        self.context = multiprocessing.get_context("spawn")
        self.timings = []
        self.calls = 0
        self.elapsed_s = 0.0

    def run(self, seconds, record=False):
        context = self.context
        until = time.monotonic() + seconds + 15.0  # servers outlive the clients
        server_procs = []
        for _ in range(self.servers):
            ready = context.Event()
            process = context.Process(
                target=serve,
                args=(
                    self.url,
                    self.vhost,
                    SERVICE_QUEUE,
                    until,
                    ready,
                    self.prefetch,
                    self.niceness,
                ),
                daemon=True,
            )
            process.start()
            server_procs.append((process, ready))
        for _, ready in server_procs:
            ready.wait(20)
        results = context.Queue()
        start_at = time.monotonic() + 1.5  # every client connected before the clock starts
        clients_until = start_at + seconds
        per_client_limit = None if self.limit is None else max(1, self.limit // self.clients)
        rate = None if self.rate is None else self.rate / self.clients
        client_procs = [
            context.Process(
                target=call,
                args=(
                    self.url,
                    self.vhost,
                    SERVICE_QUEUE,
                    clients_until,
                    self.in_flight,
                    rate,
                    per_client_limit,
                    results,
                    record,
                    start_at,
                    self.niceness,
                ),
                daemon=True,
            )
            for _ in range(self.clients)
        ]
        for process in client_procs:
            process.start()
        collected = []
        deadline = time.monotonic() + seconds + 60.0
        while len(collected) < len(client_procs) and time.monotonic() < deadline:
            try:
                collected.append(results.get(timeout=1.0))
            except Exception:  # noqa: BLE001, S112 - queue.Empty from another module
                continue
        self.elapsed_s = max(1e-9, min(time.monotonic(), clients_until) - start_at)
        for process in client_procs:
            process.join(10)
            if process.is_alive():
                process.kill()
        for process, _ in server_procs:
            process.kill()
            process.join(5)
        self.calls = sum(done for done, _ in collected)
        self.timings = [timing for _, timings in collected for timing in timings]
        return self.calls
