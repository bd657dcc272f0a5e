"""The first calls of a vhost the tap starts tracing are timed as they happened.

`make run` then `make demo` is this case: the demo's services are busy when the
tap takes its vhost up and switches tracing on. Trace messages that wait in the
tap queue until capture reads them are all stamped when it reads them (a call
of 50 ms among them showed 0.00 ms), so the tap switches tracing on only once
its capture process consumes the queue."""

import threading
import time

import pytest

from rabbit import amqp
from tests.polling import wait_until
from tests.tracer.rpc import sequential_calls, timed_calls
from tests.tracer.tapping import TapProcess, client, tracing_on
from tracer.models import Flow

# Serial: it times calls, which a loaded machine stretches; on one database: the
# stamps, not the database, are its subject.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.serial,
    pytest.mark.one_database,
]

SERVICE_S = 0.05  # each call's service time
# Far below the service time, far above any error of the tap's or the broker's stamps.
AT_LEAST_MS = SERVICE_S * 1000 / 2


class SlowServer(threading.Thread):
    """Answers each request on `rpc_queue` after SERVICE_S."""

    def __init__(self, vhost: str) -> None:
        super().__init__(daemon=True)
        self.vhost = vhost
        self.ready = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        connection = client(self.vhost, name="warren-test-slow-server")
        channel = connection.channel()
        channel.queue_declare("rpc_queue")
        channel.basic_qos(prefetch_count=1)

        def on_request(ch, method, props, body):
            time.sleep(SERVICE_S)
            ch.basic_publish(
                "", props.reply_to, body, amqp.properties(correlation_id=props.correlation_id)
            )
            ch.basic_ack(method.delivery_tag)

        channel.basic_consume("rpc_queue", on_request)
        self.ready.set()
        while not self.stopping.is_set():
            connection.process_data_events(time_limit=0.05)
        connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)


def test_it_times_the_calls_running_when_it_switches_tracing_on(scratch_vhost, mgmt):
    assert not tracing_on(mgmt, scratch_vhost)
    server = SlowServer(scratch_vhost)
    server.start()
    assert server.ready.wait(10)
    calls = threading.Thread(target=timed_calls, args=(scratch_vhost, 60), daemon=True)
    calls.start()  # about three seconds of calls, one after the other
    try:
        with TapProcess(scratch_vhost):
            calls.join(30)
            # Events are stored in the order they came: once this last call is
            # complete, every call traced before it is.
            (last,) = sequential_calls(scratch_vhost, 1, queue="last_call")
            wait_until(
                lambda: Flow.objects.filter(correlation_id=last, status="complete").exists(),
                timeout=15.0,
                what="the last call's flow",
            )
    finally:
        server.stop()
    timed = Flow.objects.filter(
        vhost=scratch_vhost, service="rpc_queue", status="complete", backlog=False
    )
    latencies = sorted(timed.values_list("latency_ms", flat=True))
    assert len(latencies) >= 10, latencies
    assert latencies[0] >= AT_LEAST_MS, f"calls of {SERVICE_S * 1000:g} ms timed at {latencies}"
