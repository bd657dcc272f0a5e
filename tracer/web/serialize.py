"""The JSON shapes of docs/architecture.md — a message, a flow — shared by the API and the pages.
Field names are a contract; masking happens here, on the way out (live events
mask with the same tracer.masking functions)."""

import base64
import contextlib
import zlib

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
        "stamp_error_us": message.stamp_error_us,
    }


def masked_body(message, names=None):
    return mask_body(bytes(message.body or b""), names)


INFLATE_LIMIT = 1024 * 1024  # what a compressed body may grow to on a page or download
COMPRESSED = ("gzip", "x-gzip", "deflate")


def inflate(body, properties, limit=INFLATE_LIMIT):
    """(bytes, words) for a body sent with content_encoding gzip or deflate.

    The bytes are None when the body is not compressed, not valid, or would
    grow past `limit` (a zip bomb stays a few bytes of work); the words say
    what happened, for the page.
    """
    encoding = str((properties or {}).get("content_encoding") or "").strip().lower()
    if encoding not in COMPRESSED or not body:
        return None, ""
    inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)  # a gzip or zlib header
    try:
        inflated = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        return None, f"content_encoding is {encoding}, but the body does not decompress ({error})"
    if len(inflated) > limit:
        return None, (
            f"content_encoding {encoding}: the body grows past {limit:,} bytes when "
            "decompressed, so it is shown as stored"
        )
    words = f"decompressed from {encoding}: {len(body):,} bytes stored, {len(inflated):,} shown"
    if not inflater.eof:
        words += " (the stored body was cut, so this is its beginning)"
    return inflated, words


def shown_body(message, names=None):
    """(masked bytes, words, inflated) — what pages and downloads give of a body.

    A compressed body is decompressed first when that is safe, so that its
    masked fields are masked too.
    """
    raw = bytes(message.body or b"")
    inflated, words = inflate(raw, message.properties)
    body = raw if inflated is None else inflated
    return mask_body(body, names), words, inflated is not None


def body_views(body):
    """body_base64 always; body_text when UTF-8; body_json when JSON."""
    views = {"body_base64": base64.b64encode(body).decode("ascii"), "body_text": None}
    views["body_json"] = None
    try:
        views["body_text"] = body.decode("utf-8")
    except UnicodeDecodeError:
        return views
    with contextlib.suppress(orjson.JSONDecodeError, orjson.JSONEncodeError):
        parsed = orjson.loads(body)
        # JSON nested deeper than orjson writes (255 levels) would break the
        # answer that carries it: such a body is shown as text only.
        orjson.dumps(parsed)
        views["body_json"] = parsed
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
    # How precise its figures are (tracer/store/resolution.py): a figure below
    # resolution_ms is below what the tap can tell; measured_behind: approximate.
    data["resolution_ms"] = flow.resolution_ms
    data["measured_behind"] = flow.measured_behind
    return data
