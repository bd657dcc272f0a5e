"""What a replay sends for one captured (or peeked) message: pure functions, no I/O.

The stored properties are the firehose's, JSON-encoded by tracer.tap.decoding
(`{"$bytes": ...}` and friends for values JSON lacks); they are turned back
into AMQP values only at the last moment. Storage keeps the original values —
masking happens on the way to pages and the API — so a replay sends exactly
what the broker carried, not the masks.
"""

import decimal
from dataclasses import dataclass, field

from rabbit import amqp, moving
from tracer.tap.decoding import REPLAY_HEADER, restore_amqp_value

REPLAY_COUNT_HEADER = "x-warren-replay-count"
# Set when an operator chose to send a body the tracer had cut: the receiver can tell.
BODY_CUT_HEADER = "x-warren-body-cut-at"


class Refused(Exception):  # noqa: N818 - a verdict on one message, not a program error
    """This message cannot be sent as asked; the reason is for the operator."""


@dataclass
class Source:
    """A message to replay, however it was found."""

    message_id: int | None
    vhost: str
    exchange: str
    routing_key: str
    properties: dict
    body: bytes
    body_size: int
    body_truncated: bool = False
    event: str = "publish"
    queue: str = ""  # the queue a captured delivery or a peeked message came from
    replay_of: int | None = None

    @classmethod
    def from_message(cls, message):
        return cls(
            message_id=message.id,
            vhost=message.vhost,
            exchange=message.exchange,
            routing_key=message.routing_key,
            properties=dict(message.properties or {}),
            body=bytes(message.body or b""),
            body_size=message.body_size,
            body_truncated=message.body_truncated,
            event=message.event,
            queue=message.queue,
            replay_of=message.replay_of,
        )

    @classmethod
    def from_peeked(cls, peeked, body):
        """A message got from a queue through the management API (see selection.peeked)."""
        body = bytes(body or b"")
        return cls(
            message_id=None,
            vhost=peeked["vhost"],
            exchange=peeked.get("exchange", ""),
            routing_key=peeked.get("routing_key", ""),
            properties=dict(peeked.get("properties") or {}),
            body=body,
            body_size=peeked.get("body_size", len(body)),
            body_truncated=bool(peeked.get("body_truncated")),
            event="deliver",
            queue=peeked.get("queue", ""),
        )

    @property
    def reply_to(self):
        return self.properties.get("reply_to") or ""


@dataclass
class Options:
    """The job's choices that shape each message (see replay.models.ReplayJob)."""

    vhost: str | None = None
    exchange: str | None = None
    routing_key: str | None = None
    redrive_how: str = ""
    body: bytes | None = None
    headers: dict | None = None
    headers_replace: bool = False
    keep_message_id: bool = True
    keep_timestamp: bool = True
    allow_truncated: bool = False

    @classmethod
    def from_job(cls, job):
        return cls(
            vhost=job.vhost,
            exchange=job.exchange,
            routing_key=job.routing_key,
            redrive_how=job.redrive_how,
            body=None if job.body is None else bytes(job.body),
            headers=job.headers,
            headers_replace=job.headers_replace,
            keep_message_id=job.keep_message_id,
            keep_timestamp=job.keep_timestamp,
            allow_truncated=job.allow_truncated,
        )


@dataclass
class Outgoing:
    vhost: str
    exchange: str
    routing_key: str
    properties: dict  # JSON form, for the record and the page
    body: bytes
    notes: list = field(default_factory=list)  # what was changed and why, in words

    def pika_properties(self):
        return amqp.properties(**restore_amqp_value(self.properties))


def replay_count(headers, replay_of):
    """How many times over this will have been replayed: the original's count plus one."""
    previous = headers.get(REPLAY_COUNT_HEADER)
    if isinstance(previous, bytes | str):
        try:
            previous = int(previous)
        except ValueError:
            previous = None
    if not isinstance(previous, int) or isinstance(previous, bool) or previous < 0:
        previous = 1 if (replay_of or headers.get(REPLAY_HEADER)) else 0
    return previous + 1


def destination(source, options):
    """(vhost, exchange, routing_key) this message goes to."""
    if options.redrive_how:
        found = moving.death_destination(
            restore_amqp_value(source.properties.get("headers") or {}), options.redrive_how
        )
        if found is None:
            raise Refused("it has no x-death header to go back by")
        if found == ("", source.queue):
            raise Refused(f"it died in queue '{source.queue}' itself; it would come straight back")
        exchange, routing_key = found
        return (options.vhost if options.vhost is not None else source.vhost), exchange, routing_key
    return (
        source.vhost if options.vhost is None else options.vhost,
        source.exchange if options.exchange is None else options.exchange,
        source.routing_key if options.routing_key is None else options.routing_key,
    )


def _edited_headers(original, options):
    if options.headers is None:
        return dict(original)
    if options.headers_replace:
        return dict(options.headers)
    headers = dict(original)
    for name, value in options.headers.items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return headers


def prepare(source, options, username="", reply_to=None, correlation_id=None):
    """The Outgoing message for `source`, or Refused with the reason.

    `reply_to`/`correlation_id` replace the originals for an RPC replay, whose
    answer must come back to Warren's own reply queue.
    """
    notes = []
    vhost, exchange, routing_key = destination(source, options)
    if options.body is not None:
        body = options.body
    elif source.body_truncated:
        if not options.allow_truncated:
            raise Refused(
                f"its body was cut at {len(source.body)} of {source.body_size} bytes when "
                "captured; sending it would deliver an incomplete message"
            )
        body = source.body
        notes.append(f"body cut at {len(body)} of {source.body_size} bytes, sent as captured")
    else:
        body = source.body

    properties = {
        name: value
        for name, value in source.properties.items()
        if name in amqp.BASIC_PROPERTY_NAMES and value is not None
    }
    if not options.keep_message_id and properties.pop("message_id", None) is not None:
        notes.append("message_id dropped")
    if not options.keep_timestamp and properties.pop("timestamp", None) is not None:
        notes.append("timestamp dropped")
    user_id = properties.get("user_id")
    if user_id is not None and user_id != username:
        # The broker refuses a user_id that is not the publishing connection's user.
        del properties["user_id"]
        notes.append(f"user_id '{user_id}' dropped: Warren publishes as '{username}'")

    headers = properties.get("headers")
    headers = _edited_headers(headers if isinstance(headers, dict) else {}, options)
    count = replay_count(headers, source.replay_of)
    if source.message_id is not None:
        headers[REPLAY_HEADER] = source.message_id
    else:
        headers.pop(REPLAY_HEADER, None)
    headers[REPLAY_COUNT_HEADER] = count
    if options.body is None and source.body_truncated:
        headers[BODY_CUT_HEADER] = len(body)
    properties["headers"] = _sendable(headers, "", notes)

    if reply_to is not None:
        properties["reply_to"] = reply_to
        properties["correlation_id"] = correlation_id
    return Outgoing(vhost, exchange, routing_key, properties, body, notes)


def _sendable(value, path, notes):
    """Header values pika can put on the wire.

    A float header (a double from another client) is the one value pika reads
    but cannot write: it goes as the AMQP decimal of the same value when there
    is one, else the message is refused — a replay never stops at it.
    """
    if isinstance(value, dict):
        return {key: _sendable(item, f"{path}{key}.", notes) for key, item in value.items()}
    if isinstance(value, list):
        return [_sendable(item, path, notes) for item in value]
    if not isinstance(value, float):
        return value
    name = path.rstrip(".")
    exact = decimal.Decimal(repr(value)).normalize()
    places = max(0, -exact.as_tuple().exponent)
    raw = exact.scaleb(places)
    if places > 255 or not -(2**31) <= raw < 2**31:
        raise Refused(
            f"header '{name}' holds the floating-point number {value!r}, which AMQP "
            "cannot carry as a decimal and Warren's AMQP client cannot send as a double"
        )
    notes.append(f"header '{name}': floating-point {value!r} sent as the decimal {exact}")
    return {"$decimal": str(exact)}
