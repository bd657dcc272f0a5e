"""RPC replay against the Fibonacci demo server: the same answer, a changed answer, a report."""

import json
import threading

import pytest

from replay import engine, jobs, rpc, spec
from tests.replay.helpers import capture_many, operator_request, trace_event
from tracer.models import Flow
from tracer.times import now_us
from workloads.engine import Actor, Context, dump
from workloads.fibonacci_rpc import QUEUE, FibonacciServer, fibonacci

pytestmark = pytest.mark.django_db
VOLATILE = ["server", "reply_to", "computed_in_ms"]


class WrongFibonacciServer(Actor):
    """A changed service: answers one more than it should."""

    def setup(self):
        self.serve(QUEUE, self.on_request)

    def on_request(self, channel, method, properties, body):
        n = json.loads(body)["n"]
        self.reply(properties, dump({"n": n, "fibonacci": fibonacci(n) + 1, "server": "new"}))
        channel.basic_ack(delivery_tag=method.delivery_tag)


def serve(broker, server_class, label):
    broker.channel.queue_declare(QUEUE)
    from rabbit.brokers import default_amqp_url

    context = Context(default_amqp_url(), broker.vhost, threading.Event(), reconnect=False)
    server = server_class(context, label)
    server.start()
    assert server.ready.wait(10), server.error
    return server


def stop(server):
    server.context.stop.set()
    server.join(5)


def captured_call(vhost, n, latency_ms, at_us):
    """The request and reply of one captured Fibonacci call; returns its Flow."""
    corr = f"c-{n}-{at_us}"
    reply_to = "amq.gen-captured"
    request = trace_event(
        vhost,
        routing_key=QUEUE,
        body=dump({"n": n, "request": 1}),
        props={"correlation_id": corr, "reply_to": reply_to, "content_type": "application/json"},
        at_us=at_us,
    )
    answer = {
        "n": n,
        "fibonacci": fibonacci(n),
        "server": "demo fibonacci server 1",
        "reply_to": reply_to,
        "computed_in_ms": 0.4,
    }
    reply = trace_event(
        vhost,
        routing_key=reply_to,
        body=dump(answer),
        props={"correlation_id": corr, "content_type": "application/json"},
        at_us=at_us + int(latency_ms * 1000),
    )
    request_row, _ = capture_many([request, reply])
    return Flow.objects.get(request_id=request_row.id)


def rpc_replay(operator, flows, **options):
    data = {
        "flow_ids": [flow.id for flow in flows],
        "await_reply": True,
        "reply_timeout_s": 5,
        "ignore_fields": VOLATILE,
        **options,
    }
    job = jobs.create_job(operator_request(operator), spec.from_api(data))
    return engine.run_job(job.id)


def test_it_gets_the_same_answer_from_the_fibonacci_server(operator, broker):
    flow = captured_call(broker.vhost, 20, latency_ms=12.5, at_us=now_us())
    assert (flow.status, flow.latency_ms) == ("complete", 12.5)
    server = serve(broker, FibonacciServer, "fibonacci server 1")
    try:
        job = rpc_replay(operator, [flow])
    finally:
        stop(server)

    assert (job.kind, job.status, job.confirmed) == ("rpc", "done", 1)
    item = job.items.get()
    assert item.reply_status == "replied"
    answer = json.loads(bytes(item.reply_body))
    assert answer["fibonacci"] == fibonacci(20) == 6765
    assert answer["reply_to"].startswith("amq.gen-")  # Warren's own reply queue
    assert item.changed is False
    assert item.original_latency_ms == 12.5
    assert 0 < item.latency_ms < 5000
    assert job.report["rpc"]["unchanged"] == 1


def test_it_shows_the_change_when_the_server_answers_differently(operator, broker):
    flow = captured_call(broker.vhost, 10, latency_ms=3.0, at_us=now_us())
    server = serve(broker, WrongFibonacciServer, "changed fibonacci server")
    try:
        job = rpc_replay(operator, [flow])
    finally:
        stop(server)

    item = job.items.get()
    assert item.changed is True
    original = flow_reply_body(flow)
    lines = rpc.diff_lines(original, bytes(item.reply_body), VOLATILE)
    assert ("del", '  "fibonacci": 55,') in lines
    assert ("add", '  "fibonacci": 56,') in lines
    assert job.report["rpc"]["changed"] == 1


def test_it_reports_a_bulk_rpc_regression(operator, broker):
    start = now_us() - 60_000_000
    flows = [
        captured_call(broker.vhost, n, latency_ms=10.0 * (i + 1), at_us=start + i * 1000_000)
        for i, n in enumerate([3, 5, 8, 13, 21])
    ]
    server = serve(broker, FibonacciServer, "fibonacci server 1")
    try:
        job = rpc_replay(operator, flows, rate_per_s=50)
    finally:
        stop(server)

    report = job.report["rpc"]
    assert (report["requests"], report["replied"], report["timeouts"]) == (5, 5, 0)
    assert (report["changed"], report["unchanged"]) == (0, 5)
    assert report["then"] == {
        "count": 5,
        "p50_ms": 30.0,
        "p95_ms": 50.0,
        "max_ms": 50.0,
        "mean_ms": 30.0,
    }
    assert report["now"]["count"] == 5
    assert 0 < report["now"]["p50_ms"] <= report["now"]["p95_ms"] <= report["now"]["max_ms"]


def test_it_reports_a_timeout_when_nobody_answers(operator, broker):
    flow = captured_call(broker.vhost, 4, latency_ms=1.0, at_us=now_us())
    broker.channel.queue_declare(QUEUE)  # nobody consumes it

    job = rpc_replay(operator, [flow], reply_timeout_s=0.5)

    item = job.items.get()
    assert (item.state, item.reply_status, item.changed) == ("confirmed", "timeout", None)
    assert job.report["rpc"]["timeouts"] == 1


def flow_reply_body(flow):
    from tracer.models import Message

    return bytes(Message.objects.get(id=flow.reply_id).body)
