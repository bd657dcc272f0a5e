"""Settled flows as OpenTelemetry spans, sent over OTLP/HTTP to WARREN_OTLP_ENDPOINT.

Each call becomes three spans that follow OpenTelemetry's messaging semantic
conventions for RabbitMQ, with the times Warren stored (explicit start and end):

    process <service>      the call: request publish → reply delivery (or the
                           reply's publish where its delivery is not traced;
                           a timeout ends at WARREN_RPC_TIMEOUT, status error)
      publish <exchange>   the request: publish → delivery to the service's queue
      receive <reply_to>   the reply: publish → delivery to the caller's queue

A request whose headers carry a W3C `traceparent` puts the call span under the
caller's span, in the caller's trace (and follows its sampling decision); any
other call starts a trace of its own. Span and trace ids are derived from the
flow's id, so a flow sent twice (a crash between the send and the commit of
the position) is the same spans twice, not new ones.

`export_pending` reads settled flows after the `otlp` FlowFeed position,
hands their spans to a BatchSpanProcessor (bounded queue, batches), flushes,
and moves the position with what the receiver took and what it did not: a
receiver that is away loses those spans (counted: FlowFeed.lost, /metrics
warren_otlp_spans_total{state="lost"}, /api/tap/status) and nothing else. It
runs in the exporter process (runner.py), never in the tap's.
"""

import hashlib
import logging
import random
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from tracer.export import feed
from tracer.export.models import FlowFeed
from tracer.models import Flow, Message
from tracer.times import to_us

log = logging.getLogger("tracer.export")

OTLP_FEED = "otlp"
BATCH_FLOWS = 500  # three spans a flow: under the processor's queue, one flush a batch
QUEUE_SPANS = 2048
EXPORT_BATCH_SPANS = 512
SEND_TIMEOUT_S = 5.0
SETTLE_GRACE_S = 5.0
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
SCOPE = "warren.tracer"


def endpoint_url(endpoint: str) -> str:
    """The traces URL: an endpoint given without a path gets OTLP's /v1/traces."""
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def otlp_settle_s() -> float:
    """A flow is exported once WARREN_RPC_TIMEOUT has passed since its request."""
    return float(settings.WARREN_RPC_TIMEOUT) + SETTLE_GRACE_S


def _id(flow_id: int, role: str, bits: int) -> int:
    digest = hashlib.blake2b(f"warren:{flow_id}:{role}".encode(), digest_size=bits // 8).digest()
    return int.from_bytes(digest, "big") or 1


class PlannedIds(IdGenerator):
    """Hands out the ids planned for the next span (per thread); random otherwise."""

    def __init__(self) -> None:
        self._local = threading.local()

    def plan(self, trace_id: int, span_id: int) -> None:
        self._local.trace_id, self._local.span_id = trace_id, span_id

    def generate_span_id(self) -> int:
        return int(getattr(self._local, "span_id", 0)) or random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return int(getattr(self._local, "trace_id", 0)) or random.getrandbits(128) or 1


class CountingExporter(SpanExporter):
    """The OTLP/HTTP exporter, counting the spans the receiver took and refused."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.sent = 0
        self.lost = 0
        self.last_error = ""
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception as error:  # noqa: BLE001 - a receiver's fault never stops the loop
            result = SpanExportResult.FAILURE
            self.last_error = f"{type(error).__name__}: {error}"
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                self.sent += len(spans)
            else:
                self.lost += len(spans)
                self.last_error = self.last_error or "the receiver did not take the spans"
        return result

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self.sent, self.lost

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


@dataclass
class Pipeline:
    """The SDK's parts for one exporter loop."""

    provider: TracerProvider
    processor: BatchSpanProcessor
    exporter: CountingExporter
    ids: PlannedIds
    tracer: trace_api.Tracer

    def shutdown(self) -> None:
        self.provider.shutdown()


def pipeline(endpoint: str | None = None, timeout_s: float = SEND_TIMEOUT_S) -> Pipeline:
    endpoint = endpoint or settings.WARREN_OTLP_ENDPOINT
    exporter = CountingExporter(
        OTLPSpanExporter(endpoint=endpoint_url(endpoint), timeout=timeout_s)
    )
    processor = BatchSpanProcessor(
        exporter,
        max_queue_size=QUEUE_SPANS,
        schedule_delay_millis=1000,
        max_export_batch_size=EXPORT_BATCH_SPANS,
        export_timeout_millis=int(timeout_s * 1000),
    )
    ids = PlannedIds()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "warren", "service.namespace": "rabbitmq"}),
        id_generator=ids,
    )
    provider.add_span_processor(processor)
    return Pipeline(provider, processor, exporter, ids, provider.get_tracer(SCOPE))


def caller_context(properties: dict[str, Any] | None) -> SpanContext | None:
    """The caller's span from a W3C traceparent header, or None."""
    headers = (properties or {}).get("headers") or {}
    if not isinstance(headers, dict):
        return None
    value = headers.get("traceparent")
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    match = TRACEPARENT.match(str(value or "").strip().lower())
    if not match:
        return None
    trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
    if not trace_id or not span_id:
        return None
    return SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(match.group(3), 16))
    )


def _ns(value: datetime | None) -> int | None:
    return None if value is None else to_us(value) * 1000


def _message_attributes(message: Message | None, operation: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
    }
    if message is None:
        return attributes
    attributes["messaging.destination.name"] = message.exchange or "amq.default"
    attributes["messaging.rabbitmq.destination.routing_key"] = message.routing_key
    attributes["messaging.message.body.size"] = message.body_size
    message_id = (message.properties or {}).get("message_id")
    if message_id:
        attributes["messaging.message.id"] = str(message_id)
    if message.connection:
        attributes["warren.connection"] = message.connection
    if message.node:
        attributes["warren.node"] = message.node
    return attributes


def _flow_attributes(flow: Flow) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "warren.flow.id": flow.id,
        "warren.flow.status": flow.status,
        "warren.flow.pairing": flow.pairing,
        "warren.vhost": flow.vhost,
        "warren.service": flow.service,
    }
    if flow.correlation_id:
        attributes["messaging.message.conversation_id"] = flow.correlation_id
    if flow.late:
        attributes["warren.flow.late"] = True
    if flow.measured_behind:
        attributes["warren.flow.measured_behind"] = True
    return attributes


def emit_flow(pipe: Pipeline, flow: Flow, messages: dict[int, Message]) -> None:
    """Hands one flow's spans to the batch processor."""
    request = messages.get(flow.request_id or 0)
    reply = messages.get(flow.reply_id or 0)
    caller = caller_context(request.properties if request else None)
    common = _flow_attributes(flow)
    start = _ns(flow.requested_at)
    assert start is not None, "a settled flow that is not an orphan has its request"
    timed_out = feed.timed_out(flow)
    if timed_out:
        end = start + int(float(settings.WARREN_RPC_TIMEOUT) * 1e9)
        status = Status(StatusCode.ERROR, "no reply within the RPC timeout")
        if flow.late:
            status = Status(StatusCode.ERROR, "the reply came after the RPC timeout")
    else:
        end = _ns(flow.reply_delivered_at or flow.replied_at) or start
        status = Status(StatusCode.UNSET)
    trace_id = caller.trace_id if caller else _id(flow.id, "trace", 128)
    pipe.ids.plan(trace_id, _id(flow.id, "call", 64))
    parent = trace_api.set_span_in_context(trace_api.NonRecordingSpan(caller)) if caller else None
    call = pipe.tracer.start_span(
        f"process {flow.service or flow.reply_to}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={**_message_attributes(request, "process"), **common},
        start_time=start,
    )
    call.set_status(status)
    inside = trace_api.set_span_in_context(call)
    if flow.request_delivered_at is not None:
        pipe.ids.plan(trace_id, _id(flow.id, "request", 64))
        attributes = {**_message_attributes(request, "publish"), **common}
        if request is not None and request.routed_queues:
            attributes["warren.routed_queues"] = [str(q) for q in request.routed_queues]
        destination = (request.exchange or "amq.default") if request else flow.service
        span = pipe.tracer.start_span(
            f"publish {destination}",
            context=inside,
            kind=SpanKind.PRODUCER,
            attributes=attributes,
            start_time=start,
        )
        span.end(end_time=_ns(flow.request_delivered_at))
    if flow.replied_at is not None and not timed_out:
        pipe.ids.plan(trace_id, _id(flow.id, "reply", 64))
        span = pipe.tracer.start_span(
            f"receive {flow.reply_to}",
            context=inside,
            kind=SpanKind.CONSUMER,
            attributes={**_message_attributes(reply, "receive"), **common},
            start_time=_ns(flow.replied_at),
        )
        span.end(end_time=_ns(flow.reply_delivered_at or flow.replied_at))
    call.end(end_time=end)
    pipe.ids.plan(0, 0)


@dataclass
class Exported:
    flows: int
    spans: int
    lost: int


def export_pending(
    pipe: Pipeline, now: datetime | None = None, limit: int = BATCH_FLOWS
) -> Exported:
    """Exports the next settled flows after the `otlp` position; moves it past them.

    The first time, the position starts at the flows settling now: switching
    export on sends what happens from then on, not days of stored history.

    Nothing is locked while spans travel: the flows are read, sent and flushed,
    then the position moves in a short transaction (unless another exporter
    has moved it meanwhile: then its own count stands).
    """
    until = feed.horizon(otlp_settle_s(), now)
    # Switched on for the first time: from now on, not the whole stored history.
    FlowFeed.objects.get_or_create(name=OTLP_FEED, defaults={"after_started_at": until})
    position = FlowFeed.objects.get(name=OTLP_FEED)
    flows = feed.settled_after(position, until, limit)
    if not flows:
        return Exported(0, 0, 0)
    ids = {i for flow in flows for i in (flow.request_id, flow.reply_id) if i is not None}
    messages = {m.id: m for m in Message.objects.filter(id__in=ids).defer("body")}
    sent_before, lost_before = pipe.exporter.counts()
    for flow in flows:
        emit_flow(pipe, flow, messages)
    if not pipe.processor.force_flush(int(SEND_TIMEOUT_S * 3000)):
        log.warning("OTLP: spans still queued after the flush's time")
    sent_after, lost_after = pipe.exporter.counts()
    sent, lost = sent_after - sent_before, lost_after - lost_before
    with feed.claimed(OTLP_FEED) as current:
        if (current.after_started_at, current.after_id) == (
            position.after_started_at,
            position.after_id,
        ):
            feed.advance(current, flows, done=sent, lost=lost)
        if lost:
            current.last_error = pipe.exporter.last_error[:1000]
            current.last_error_at = timezone.now()
            current.save(update_fields=["last_error", "last_error_at"])
    pipe.exporter.last_error = ""
    return Exported(len(flows), sent, lost)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def export_status() -> dict[str, Any]:
    """For /api/tap/status: whether flows are exported, how many spans, lost."""
    position = FlowFeed.objects.filter(name=OTLP_FEED).first()
    endpoint = settings.WARREN_OTLP_ENDPOINT
    return {
        "enabled": bool(endpoint),
        "endpoint": _without_credentials(endpoint_url(endpoint)) if endpoint else None,
        "spans_exported": position.done if position else 0,
        "spans_lost": position.lost if position else 0,
        "last_error": (position.last_error or None) if position else None,
        "exported_until": position.after_started_at.isoformat()
        if position and position.after_started_at
        else None,
    }
