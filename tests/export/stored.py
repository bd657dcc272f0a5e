"""Flows and their messages written straight to the database, with the times a
test chooses, for the readers of stored flows (metrics, spans, exports)."""

from datetime import datetime, timedelta

from tracer.models import Flow, Message

_next_id = [9_000_000_000]


def new_id() -> int:
    _next_id[0] += 1
    return _next_id[0]


def message(
    event: str,
    at: datetime,
    *,
    vhost: str = "/",
    exchange: str = "",
    routing_key: str = "rpc_queue",
    queue: str = "",
    correlation_id: str = "",
    reply_to: str = "",
    properties: dict | None = None,
    body: bytes = b"{}",
    flow_id: int | None = None,
    message_id: int | None = None,
) -> Message:
    return Message.objects.create(
        id=message_id or new_id(),
        event=event,
        captured_at=at,
        vhost=vhost,
        node="rabbit@test",
        exchange=exchange,
        routing_key=routing_key,
        routing_keys=[routing_key],
        routed_queues=[routing_key] if event == "publish" else None,
        queue=queue,
        properties=properties or {},
        correlation_id=correlation_id,
        reply_to=reply_to,
        reply_key=reply_to or routing_key,
        body=body,
        body_size=len(body),
        connection="127.0.0.1:50000 -> 127.0.0.1:5672",
        channel=1,
        flow_id=flow_id,
    )


def call(
    requested: datetime,
    *,
    queue_wait_ms: float | None = 2.0,
    service_ms: float | None = 10.0,
    reply_delivery_ms: float | None = 1.0,
    vhost: str = "/",
    service: str = "rpc_queue",
    status: str = "complete",
    late: bool = False,
    correlation_id: str = "c-1",
    reply_to: str = "amq.gen-reply",
    headers: dict | None = None,
    backlog: bool = False,
) -> Flow:
    """A call stored as the tap stores one: its request, deliveries and reply."""
    flow_id = new_id()
    properties = {
        "correlation_id": correlation_id,
        "reply_to": reply_to,
        "message_id": f"m-{flow_id}",
    }
    if headers:
        properties["headers"] = headers
    request = message(
        "publish",
        requested,
        vhost=vhost,
        routing_key=service,
        correlation_id=correlation_id,
        reply_to=reply_to,
        properties=properties,
        flow_id=flow_id,
        message_id=flow_id,
    )
    delivered = replied = reply_delivered = None
    if queue_wait_ms is not None:
        delivered = requested + timedelta(milliseconds=queue_wait_ms)
        message(
            "deliver", delivered, vhost=vhost, routing_key=service, queue=service, flow_id=flow_id
        )
    reply = None
    if service_ms is not None and delivered is not None:
        replied = delivered + timedelta(milliseconds=service_ms)
        reply = message(
            "publish",
            replied,
            vhost=vhost,
            routing_key=reply_to,
            correlation_id=correlation_id,
            properties={"correlation_id": correlation_id},
            flow_id=flow_id,
        )
        if reply_delivery_ms is not None:
            reply_delivered = replied + timedelta(milliseconds=reply_delivery_ms)
            message(
                "deliver",
                reply_delivered,
                vhost=vhost,
                routing_key=reply_to,
                queue=reply_to,
                flow_id=flow_id,
            )

    def ms(later: datetime | None, earlier: datetime | None) -> float | None:
        if later is None or earlier is None:
            return None
        return (later - earlier).total_seconds() * 1000

    flow = Flow(
        id=request.id,
        vhost=vhost,
        service=service,
        correlation_id=correlation_id,
        reply_to=reply_to,
        pairing="correlation_id",
        status=status,
        started_at=requested,
        requested_at=requested,
        request_delivered_at=delivered,
        replied_at=replied,
        reply_delivered_at=reply_delivered,
        latency_ms=ms(replied, requested),
        queue_wait_ms=ms(delivered, requested),
        service_ms=ms(replied, delivered),
        end_to_end_ms=ms(reply_delivered, requested),
        request_id=request.id,
        reply_id=reply.id if reply else None,
        replies=1 if reply else 0,
        late=late,
        backlog=backlog,
    )
    flow.save()
    return flow
