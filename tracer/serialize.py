"""The JSON shapes of DESIGN §7 — a message, a flow — shared by the API and the pages.
Field names are a contract; masking happens here, on the way out (live events
mask with the same tracer.masking functions)."""

import base64
import contextlib

import orjson

from tracer.masking import mask_body, mask_properties
from tracer.times import iso

MESSAGE_FIELDS = (
    "id",
    "event",
    "captured_at",
    "vhost",
    "node",
    "exchange",
    "routing_keys",
    "routed_queues",
    "queue",
    "properties",
    "correlation_id",
    "reply_to",
    "body_size",
    "body_truncated",
    "redelivered",
    "user",
    "connection",
    "channel",
    "flow_id",
    "backlog",
    "replay_of",
)
FLOW_FIELDS = (
    "id",
    "vhost",
    "service",
    "correlation_id",
    "reply_to",
    "pairing",
    "status",
    "requested_at",
    "request_delivered_at",
    "replied_at",
    "reply_delivered_at",
    "latency_ms",
    "queue_wait_ms",
    "service_ms",
    "end_to_end_ms",
    "request_id",
    "reply_id",
    "replies",
    "redeliveries",
    "late",
)


def message_json(message, names=None):
    """A Message as the API shows it (properties masked), without the body."""
    return {
        "id": message.id,
        "event": message.event,
        "captured_at": iso(message.captured_at),
        "vhost": message.vhost,
        "node": message.node,
        "exchange": message.exchange,
        "routing_keys": message.routing_keys,
        "routed_queues": message.routed_queues if message.event == "publish" else None,
        "queue": message.queue if message.event == "deliver" else None,
        "properties": mask_properties(message.properties, names),
        "correlation_id": message.correlation_id or None,
        "reply_to": message.reply_to or None,
        "body_size": message.body_size,
        "body_truncated": message.body_truncated,
        "redelivered": message.redelivered,
        "user": message.user,
        "connection": message.connection,
        "channel": message.channel,
        "flow_id": message.flow_id,
        "backlog": message.backlog,
        "replay_of": message.replay_of,
        "duplicates": message.duplicates,
    }


def masked_body(message, names=None):
    return mask_body(bytes(message.body or b""), names)


def body_views(body):
    """body_base64 always; body_text when UTF-8; body_json when JSON."""
    views = {"body_base64": base64.b64encode(body).decode("ascii"), "body_text": None}
    views["body_json"] = None
    try:
        views["body_text"] = body.decode("utf-8")
    except UnicodeDecodeError:
        return views
    with contextlib.suppress(orjson.JSONDecodeError):
        views["body_json"] = orjson.loads(body)
    return views


def message_detail_json(message, names=None):
    data = message_json(message, names)
    data.update(body_views(masked_body(message, names)))
    return data


def flow_json(flow):
    data = {name: getattr(flow, name) for name in FLOW_FIELDS}
    for name in ("requested_at", "request_delivered_at", "replied_at", "reply_delivered_at"):
        data[name] = iso(data[name])
    data["backlog"] = flow.backlog
    return data
