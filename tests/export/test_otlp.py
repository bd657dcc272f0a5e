"""Flows as OpenTelemetry spans over OTLP/HTTP, checked by a receiver that decodes
what arrives with opentelemetry-proto: names, parents, every attribute and time."""

import socket
from datetime import timedelta

import pytest
from django.utils import timezone
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from benchmarks.otlp_receiver import Receiver
from tests.export import stored
from tracer.export import otlp
from tracer.export.models import FlowFeed
from tracer.models import Message
from tracer.times import to_us

pytestmark = pytest.mark.django_db

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def receiver():
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def short_timeout(settings):
    settings.WARREN_RPC_TIMEOUT = 5
    return settings


@pytest.fixture(autouse=True)
def running_export(db):
    """An export that has been on since before these tests' flows (a first start
    begins at the present: test_it_starts_with_what_happens_once_it_is_on)."""
    FlowFeed.objects.create(name=otlp.OTLP_FEED)


def ns(value) -> int:
    return to_us(value) * 1000


def by_name(spans, flow_id):
    return {s.name.split(" ")[0]: s for s in spans if s.attributes["warren.flow.id"] == flow_id}


def test_it_sends_a_call_as_three_spans_in_the_callers_trace(receiver, short_timeout):
    requested = timezone.now() - timedelta(minutes=5)
    flow = stored.call(
        requested,
        queue_wait_ms=3.25,
        service_ms=41.5,
        reply_delivery_ms=0.75,
        service="rpc_queue",
        correlation_id="corr-42",
        reply_to="amq.gen-abc",
        headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
    )
    pipe = otlp.pipeline(receiver.endpoint, timeout_s=5)
    try:
        done = otlp.export_pending(pipe)
    finally:
        pipe.shutdown()
    assert (done.flows, done.spans, done.lost) == (1, 3, 0)
    assert receiver.content_types == {"application/x-protobuf"}
    spans = by_name(receiver.spans, flow.id)
    assert set(spans) == {"process", "publish", "receive"}
    call, request, reply = spans["process"], spans["publish"], spans["receive"]

    # One trace, the caller's; the call under the caller's span, the hops under the call.
    assert {s.trace_id for s in spans.values()} == {CALLER_TRACE}
    assert call.parent_span_id == CALLER_SPAN
    assert request.parent_span_id == reply.parent_span_id == call.span_id
    assert (call.name, request.name, reply.name) == (
        "process rpc_queue",
        "publish amq.default",
        "receive amq.gen-abc",
    )
    assert (call.kind, request.kind, reply.kind) == (
        Span.SPAN_KIND_SERVER,
        Span.SPAN_KIND_PRODUCER,
        Span.SPAN_KIND_CONSUMER,
    )
    # The stored times, to the microsecond.
    assert (call.start_ns, call.end_ns) == (ns(flow.requested_at), ns(flow.reply_delivered_at))
    assert (request.start_ns, request.end_ns) == (
        ns(flow.requested_at),
        ns(flow.request_delivered_at),
    )
    assert (reply.start_ns, reply.end_ns) == (ns(flow.replied_at), ns(flow.reply_delivered_at))
    assert request.end_ns - request.start_ns == 3_250_000
    assert call.status_code == Status.STATUS_CODE_UNSET

    request_message = Message.objects.get(id=flow.request_id)
    common = {
        "messaging.system": "rabbitmq",
        "messaging.message.conversation_id": "corr-42",
        "warren.flow.id": flow.id,
        "warren.flow.status": "complete",
        "warren.flow.pairing": "correlation_id",
        "warren.vhost": "/",
        "warren.service": "rpc_queue",
        "warren.node": "rabbit@test",
        "warren.connection": "127.0.0.1:50000 -> 127.0.0.1:5672",
    }
    assert request.attributes == {
        **common,
        "messaging.operation.type": "publish",
        "messaging.operation.name": "publish",
        "messaging.destination.name": "amq.default",
        "messaging.rabbitmq.destination.routing_key": "rpc_queue",
        "messaging.message.id": f"m-{flow.id}",
        "messaging.message.body.size": request_message.body_size,
        "warren.routed_queues": ["rpc_queue"],
    }
    assert call.attributes == {
        **common,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "amq.default",
        "messaging.rabbitmq.destination.routing_key": "rpc_queue",
        "messaging.message.id": f"m-{flow.id}",
        "messaging.message.body.size": request_message.body_size,
    }
    reply_message = Message.objects.get(id=flow.reply_id)
    assert reply.attributes == {
        **common,
        "messaging.operation.type": "receive",
        "messaging.operation.name": "receive",
        "messaging.destination.name": "amq.default",
        "messaging.rabbitmq.destination.routing_key": "amq.gen-abc",
        "messaging.message.body.size": reply_message.body_size,
    }
    assert call.resource["service.name"] == "warren"
    assert call.scope == "warren.tracer"


def test_it_sends_timeouts_as_errors_and_each_flow_once(receiver, short_timeout):
    base = timezone.now() - timedelta(minutes=5)
    answered = stored.call(base, correlation_id="a")
    unanswered = stored.call(base + timedelta(seconds=1), service_ms=None, status="timeout")
    late = stored.call(base + timedelta(seconds=2), service_ms=7000, status="complete", late=True)
    direct = stored.call(base + timedelta(seconds=3), reply_delivery_ms=None)
    stored.call(timezone.now(), correlation_id="too-new")  # within the timeout: not settled
    stored.call(base, backlog=True)  # times measured after the fact: never sent
    pipe = otlp.pipeline(receiver.endpoint, timeout_s=5)
    try:
        assert otlp.export_pending(pipe).flows == 4
        assert otlp.export_pending(pipe).flows == 0  # the position moved: nothing twice
    finally:
        pipe.shutdown()
    feed = FlowFeed.objects.get(name=otlp.OTLP_FEED)
    assert (feed.done, feed.lost) == (len(receiver.spans), 0)

    # Its own trace when no traceparent came with the request.
    assert len({s.trace_id for s in by_name(receiver.spans, answered.id).values()}) == 1
    assert by_name(receiver.spans, answered.id)["process"].parent_span_id == ""

    timed_out = by_name(receiver.spans, unanswered.id)
    assert set(timed_out) == {"process", "publish"}  # delivered, never answered
    call = timed_out["process"]
    assert call.status_code == Status.STATUS_CODE_ERROR
    assert call.status_message == "no reply within the RPC timeout"
    assert call.end_ns - call.start_ns == 5_000_000_000  # WARREN_RPC_TIMEOUT

    late_spans = by_name(receiver.spans, late.id)
    assert late_spans["process"].status_message == "the reply came after the RPC timeout"
    assert late_spans["process"].attributes["warren.flow.late"] is True

    # Direct reply-to: the reply's delivery is not traced; its span is its publish.
    reply = by_name(receiver.spans, direct.id)["receive"]
    assert reply.start_ns == reply.end_ns == ns(direct.replied_at)
    assert by_name(receiver.spans, direct.id)["process"].end_ns == ns(direct.replied_at)


def test_it_follows_the_callers_decision_not_to_sample(receiver, short_timeout):
    flow = stored.call(
        timezone.now() - timedelta(minutes=1),
        headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"},
    )
    pipe = otlp.pipeline(receiver.endpoint, timeout_s=5)
    try:
        done = otlp.export_pending(pipe)
    finally:
        pipe.shutdown()
    assert (done.flows, done.spans, done.lost) == (1, 0, 0)
    assert by_name(receiver.spans, flow.id) == {}


def test_it_sends_the_same_span_ids_when_a_flow_goes_again(receiver, short_timeout):
    flow = stored.call(timezone.now() - timedelta(minutes=1))
    pipe = otlp.pipeline(receiver.endpoint, timeout_s=5)
    try:
        otlp.export_pending(pipe)
        first = sorted((s.trace_id, s.span_id) for s in receiver.spans)
        # As after a crash between the send and the position's commit:
        FlowFeed.objects.filter(name=otlp.OTLP_FEED).update(after_started_at=None, after_id=0)
        otlp.export_pending(pipe)
    finally:
        pipe.shutdown()
    again = sorted((s.trace_id, s.span_id) for s in receiver.spans[len(first) :])
    assert again == first
    assert len(by_name(receiver.spans, flow.id)) == 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_it_counts_what_a_receiver_that_is_away_loses_and_nothing_else(
    short_timeout, operator_client
):
    port = _free_port()
    stored.call(timezone.now() - timedelta(minutes=2))
    pipe = otlp.pipeline(f"http://127.0.0.1:{port}", timeout_s=1)
    try:
        lost = otlp.export_pending(pipe)
        assert (lost.flows, lost.spans, lost.lost) == (1, 0, 3)
        status = operator_client.get("/api/tap/status").json()["export"]
        assert (status["spans_exported"], status["spans_lost"]) == (0, 3)
        assert status["last_error"]
        metrics = operator_client.get("/metrics").content.decode()
        assert 'warren_otlp_spans_total{state="lost"} 3.0' in metrics

        # Back again: the next flows arrive; the lost ones are not sent twice.
        back = Receiver(port=port).start()
        try:
            later = stored.call(timezone.now() - timedelta(minutes=1))
            sent = otlp.export_pending(pipe)
            assert (sent.flows, sent.spans, sent.lost) == (1, 3, 0)
            assert {s.attributes["warren.flow.id"] for s in back.spans} == {later.id}
        finally:
            back.stop()
    finally:
        pipe.shutdown()
    feed = FlowFeed.objects.get(name=otlp.OTLP_FEED)
    assert (feed.done, feed.lost) == (3, 3)


def test_it_starts_with_what_happens_once_it_is_on(receiver, short_timeout):
    FlowFeed.objects.all().delete()  # never switched on before
    stored.call(timezone.now() - timedelta(hours=3))  # stored history
    pipe = otlp.pipeline(receiver.endpoint, timeout_s=5)
    try:
        assert otlp.export_pending(pipe).flows == 0
        later = stored.call(timezone.now() - timedelta(seconds=1))
        assert otlp.export_pending(pipe, now=timezone.now() + timedelta(seconds=30)).flows == 1
    finally:
        pipe.shutdown()
    assert {s.attributes["warren.flow.id"] for s in receiver.spans} == {later.id}


def test_it_counts_spans_and_calls_at_a_receiver_that_keeps_none(short_timeout):
    counting = Receiver(keep_spans=False).start()
    try:
        for minutes in (3, 2):
            stored.call(timezone.now() - timedelta(minutes=minutes))
        pipe = otlp.pipeline(counting.endpoint, timeout_s=5)
        try:
            done = otlp.export_pending(pipe)
        finally:
            pipe.shutdown()
    finally:
        counting.stop()
    assert (done.flows, done.spans) == (2, 6)
    assert (counting.span_count, counting.call_spans, counting.spans) == (6, 2, [])
