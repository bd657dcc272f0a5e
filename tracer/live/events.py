"""Live events as plain dicts: what a live page is told about a flow or a message.

msgpack- and JSON-friendly, times in epoch microseconds, masked
(tracer.masking) before they leave the process. The tap's publisher
(tracer.live.publish) makes them from captured events and pairing flows; the live
pages make the same dicts from database rows for their first render, so one
template partial renders a row whichever way it came.
"""

from collections.abc import Mapping, Set
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypedDict

import orjson

from tracer.masking import MASK, mask_body, mask_properties, masked_names
from tracer.times import to_us

if TYPE_CHECKING:
    from tracer.models import Flow, Message
    from tracer.store.pairing import Flow as PairingFlow
    from tracer.store.storage import CapturedEvent

PREVIEW_SOURCE_BYTES = 2048
PREVIEW_CHARS = 160

# What flow_event takes: a pairing flow, a stored one, or a dict of its columns.
FlowSource: TypeAlias = "PairingFlow | Flow | Mapping[str, Any]"
# What message_event takes: a captured event, a stored message, or a dict of its columns.
MessageSource: TypeAlias = "CapturedEvent | Message | Mapping[str, Any]"


class FlowEvent(TypedDict):
    """A flow as a live page is told about it."""

    kind: Literal["flow"]
    id: int
    broker: str
    vhost: str
    service: str
    correlation_id: str
    reply_to: str
    pairing: str
    status: str
    late: bool
    backlog: bool
    started_us: int | None
    requested_us: int | None
    replied_us: int | None
    latency_ms: float | None
    queue_wait_ms: float | None
    service_ms: float | None
    end_to_end_ms: float | None
    resolution_ms: float | None  # the tap's, once stored (tracer/store/resolution.py)
    measured_behind: bool
    replies: int
    redeliveries: int
    stamp_us: int | None


class MessageEvent(TypedDict):
    """A captured or stored message as a live page is told about it."""

    kind: Literal["message"]
    id: int
    broker: str
    vhost: str
    event: str
    exchange: str
    routing_key: str
    routing_keys: list[str]
    routed_queues: list[str] | None
    queue: str
    correlation_id: str
    reply_to: str
    content_type: str
    type: str
    traceparent: str
    body_size: int
    preview: str
    redelivered: bool
    flow_id: int | None
    backlog: bool
    connection: str
    captured_us: int | None
    stamp_us: int | None


def _us(value: int | float | datetime | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return to_us(value)
    return int(value)


def field_of(obj: object, name: str, default: Any = None) -> Any:
    """A field of a dict, a model instance or a dataclass alike."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _masked_text(name: str, value: str, names: Set[str]) -> str:
    return MASK if value and name in names else value


FLOW_TIMES = ("started_at", "requested_at", "request_delivered_at", "replied_at")


def flow_event(flow: FlowSource, broker: str, names: frozenset[str] | None = None) -> FlowEvent:
    """A flow (pairing.Flow, a tracer.models.Flow or a dict of its columns) as a live event."""
    names = masked_names() if names is None else names
    times = {name: _us(field_of(flow, name)) for name in (*FLOW_TIMES, "reply_delivered_at")}
    known = [value for value in times.values() if value is not None]
    return {
        "kind": "flow",
        "id": int(field_of(flow, "id")),
        "broker": broker,
        "vhost": field_of(flow, "vhost") or "",
        "service": field_of(flow, "service") or "",
        "correlation_id": _masked_text(
            "correlation_id", field_of(flow, "correlation_id") or "", names
        ),
        "reply_to": _masked_text("reply_to", field_of(flow, "reply_to") or "", names),
        "pairing": field_of(flow, "pairing") or "",
        "status": field_of(flow, "status"),
        "late": bool(field_of(flow, "late")),
        "backlog": bool(field_of(flow, "backlog")),
        "started_us": times["started_at"],
        "requested_us": times["requested_at"],
        "replied_us": times["replied_at"],
        "latency_ms": field_of(flow, "latency_ms"),
        "queue_wait_ms": field_of(flow, "queue_wait_ms"),
        "service_ms": field_of(flow, "service_ms"),
        "end_to_end_ms": field_of(flow, "end_to_end_ms"),
        "resolution_ms": field_of(flow, "resolution_ms"),
        "measured_behind": bool(field_of(flow, "measured_behind")),
        "replies": field_of(flow, "replies") or 0,
        "redeliveries": field_of(flow, "redeliveries") or 0,
        # When the tap saw the flow's latest event: where a page's delay counts from.
        "stamp_us": max(known) if known else None,
    }


def body_preview(body: bytes | memoryview | None, names: frozenset[str] | None = None) -> str:
    """The start of a body as one line of text, masked; "" for none, a note for binary."""
    if not body:
        return ""
    names = masked_names() if names is None else names
    chunk = bytes(body[:PREVIEW_SOURCE_BYTES])
    chunk = mask_body(chunk, names)
    text = chunk.decode("utf-8", "replace")
    head = text[:400]
    odd = sum(1 for char in head if (char < " " and char not in "\t\r\n") or char == "\ufffd")
    if odd > max(4, len(head) // 20):
        return "(binary)"
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _json_value(value: object) -> Any:
    if isinstance(value, str | bytes):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value


def message_event(
    message: MessageSource, broker: str, names: frozenset[str] | None = None
) -> MessageEvent:
    """A captured event (decoding.Captured) or a stored Message as a live event."""
    names = masked_names() if names is None else names
    properties = _json_value(
        field_of(message, "properties_json") or field_of(message, "properties") or "{}"
    )
    properties = mask_properties(properties if isinstance(properties, dict) else {}, names)
    routing_keys = _json_value(
        field_of(message, "routing_keys_json") or field_of(message, "routing_keys") or "[]"
    )
    routed = field_of(message, "routed_queues_json")
    routed = _json_value(routed) if routed is not None else field_of(message, "routed_queues")
    captured = field_of(message, "captured_us")
    if captured is None:
        captured = _us(field_of(message, "captured_at"))
    headers = properties.get("headers")
    traceparent = headers.get("traceparent") if isinstance(headers, dict) else None
    return {
        "kind": "message",
        "id": int(field_of(message, "id")),
        "broker": broker,
        "vhost": field_of(message, "vhost") or "",
        "event": field_of(message, "event"),
        "exchange": field_of(message, "exchange") or "",
        "routing_key": field_of(message, "routing_key") or "",
        "routing_keys": [str(key) for key in routing_keys or []],
        "routed_queues": routed,
        "queue": field_of(message, "queue") or "",
        "correlation_id": str(properties.get("correlation_id") or ""),
        "reply_to": str(properties.get("reply_to") or ""),
        "content_type": str(properties.get("content_type") or ""),
        "type": str(properties.get("type") or ""),
        "traceparent": traceparent if isinstance(traceparent, str) else "",
        "body_size": field_of(message, "body_size") or 0,
        "preview": body_preview(field_of(message, "body"), names),
        "redelivered": bool(field_of(message, "redelivered")),
        "flow_id": field_of(message, "flow_id"),
        "backlog": bool(field_of(message, "backlog")),
        "connection": field_of(message, "connection") or "",
        "captured_us": captured,
        "stamp_us": captured,
    }
