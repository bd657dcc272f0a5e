"""Firehose frames to captured events (docs/architecture.md, Decoding), each frame decoded once.

A trace message's headers carry `exchange_name`, `routing_keys`, `properties`
(the original basic properties, underscored), `node`, `vhost`, `connection`,
`channel`, `user`, `routed_queues` (publish) and `redelivered` (deliver); its
routing key is `publish.<exchange>` or `deliver.<queue>`; its body is the
original body. `decode` never raises: whatever arrives becomes a row.

AMQP values that JSON lacks are kept recoverable (`restore_amqp_value` turns
them back, for replays):

    bytes     -> {"$bytes": "<base64>"}
    Decimal   -> {"$decimal": "1.25"}
    timestamp -> {"$timestamp": "2024-01-01T00:00:00+00:00"}
    anything else odd -> {"$repr": "..."}; a NUL in a string becomes the text "\\u0000"
"""

import base64
import datetime
import decimal
import hashlib
import operator
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias, TypeVar

import orjson

DELIVER_PREFIX = "deliver."
REPLAY_HEADER = "x-warren-replay-of"

_TWO_32 = 1 << 32
_YEAR_S = 366 * 86400
_MAX_DEPTH = 64

_T = TypeVar("_T")

# What json_safe() gives: JSON all through, every key a string.
JSONValue: TypeAlias = "None | bool | int | float | str | list[JSONValue] | Mapping[str, JSONValue]"
# A header table as rabbit/raw.py decodes it (a key not UTF-8 stays bytes), or
# as parsed JSON gives it (the management API: tracer/tap/rescue.py).
Headers: TypeAlias = Mapping[str | bytes, object] | Mapping[str, object]
# What a message body may arrive as.
Body: TypeAlias = bytes | bytearray | memoryview


# Captured's slot values in __slots__ order (pickling).
CapturedValues: TypeAlias = tuple[
    int | None,  # id
    str,  # event
    int,  # captured_us
    str,  # vhost
    str,  # node
    str,  # exchange
    str,  # routing_key
    str,  # routing_keys_json
    str | None,  # routed_queues_json
    str,  # queue
    str,  # properties_json
    str,  # correlation_id
    str,  # reply_to
    bytes,  # body
    int,  # body_size
    bool,  # body_truncated
    bool,  # redelivered
    str,  # user
    str,  # connection
    int | None,  # channel
    bool,  # backlog
    int | None,  # replay_of
    int,  # fingerprint
    int,  # dedupe_key
    bool,  # tap_redelivered
    int | None,  # flow_id
    int,  # stamp_error_us
]


class Captured:
    """One decoded event: the columns of a Message row, plus what storage needs."""

    __slots__ = (
        "id",
        "event",
        "captured_us",
        "vhost",
        "node",
        "exchange",
        "routing_key",
        "routing_keys_json",
        "routed_queues_json",
        "queue",
        "properties_json",
        "correlation_id",
        "reply_to",
        "body",
        "body_size",
        "body_truncated",
        "redelivered",
        "user",
        "connection",
        "channel",
        "backlog",
        "replay_of",
        "fingerprint",
        "dedupe_key",
        "tap_redelivered",
        "flow_id",
        "stamp_error_us",
    )

    # Annotations only (no class attributes beside the slots). The message id
    # and flow id come from storage; backlog and tap_redelivered from the tap.
    id: int | None
    event: str  # "publish" or "deliver"
    captured_us: int
    vhost: str
    node: str
    exchange: str
    routing_key: str
    routing_keys_json: str
    routed_queues_json: str | None  # None for a deliver
    queue: str
    properties_json: str
    correlation_id: str
    reply_to: str
    body: bytes
    body_size: int
    body_truncated: bool
    redelivered: bool
    user: str
    connection: str
    channel: int | None
    backlog: bool
    replay_of: int | None
    fingerprint: int
    dedupe_key: int
    tap_redelivered: bool
    flow_id: int | None
    stamp_error_us: int  # how late capture's stamp may be (0: read as it came)

    def __init__(self, **fields: object) -> None:
        # Only the names in __slots__ can be set: a misspelt field fails here.
        self.id = None
        self.flow_id = None
        self.backlog = False
        self.tap_redelivered = False
        self.stamp_error_us = 0
        for name, value in fields.items():
            setattr(self, name, value)

    def __reduce__(self) -> tuple[Callable[[CapturedValues], "Captured"], tuple[CapturedValues]]:
        # Compact pickling: the tap's feeder process sends events through a pipe.
        return (captured_from_values, (_values_of(self),))

    @property
    def reply_key(self) -> str:
        """The reply queue this event may concern: reply_to, else where it goes."""
        if self.reply_to:
            return self.reply_to
        return self.routing_key if self.event == "publish" else self.queue


_SLOTS: tuple[str, ...] = Captured.__slots__
_values_of: Callable[[Captured], CapturedValues] = operator.attrgetter(*_SLOTS)


def captured_from_values(values: CapturedValues) -> Captured:
    """A Captured from its slot values (unpickling, tens of thousands a second)."""
    event = Captured.__new__(Captured)
    (event.id, event.event, event.captured_us, event.vhost, event.node, event.exchange,
     event.routing_key, event.routing_keys_json, event.routed_queues_json, event.queue,
     event.properties_json, event.correlation_id, event.reply_to, event.body, event.body_size,
     event.body_truncated, event.redelivered, event.user, event.connection, event.channel,
     event.backlog, event.replay_of, event.fingerprint, event.dedupe_key, event.tap_redelivered,
     event.flow_id, event.stamp_error_us) = values  # fmt: skip
    return event


def text(value: object, limit: int | None = None) -> str:
    """A column-safe string from whatever a header holds."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "backslashreplace")
    elif not isinstance(value, str):
        value = str(value)
    if "\x00" in value:
        value = value.replace("\x00", "\\u0000")
    return value[:limit] if limit else value


def _default(value: object) -> dict[str, str]:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime.datetime | datetime.date):
        return {"$timestamp": value.isoformat()}
    return {"$repr": repr(value)[:500]}


def json_safe(value: object, depth: int = 0) -> JSONValue:
    """The slow, total conversion: every key a string, every leaf JSON."""
    if depth > _MAX_DEPTH:
        return {"$repr": "nested too deep"}
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(1 << 63) <= value < (1 << 64) else {"$repr": str(value)}
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else {"$repr": repr(value)}
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {text(key): json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item, depth + 1) for item in value]
    return _default(value)


def dumps(value: object) -> bytes:
    """JSON bytes of an AMQP value: orjson directly, the total conversion when needed."""
    try:
        data = orjson.dumps(value, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(json_safe(value))
    if b"\\u0000" in data:
        return orjson.dumps(json_safe(value))
    return data


def restore_amqp_value(value: object) -> Any:
    """Undo the JSON encoding above: the values pika should send again.

    Whatever shape the JSON had (a properties dict, a header value): Any."""
    if isinstance(value, dict):
        if len(value) == 1:
            (key, item), *_ = value.items()
            if key == "$bytes" and isinstance(item, str):
                return base64.b64decode(item)
            if key == "$decimal" and isinstance(item, str):
                return decimal.Decimal(item)
            if key == "$timestamp" and isinstance(item, str):
                return datetime.datetime.fromisoformat(item)
        return {key: restore_amqp_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [restore_amqp_value(item) for item in value]
    return value


def recover_timestamp(value: _T, arrival_us: int) -> _T | int:
    """The `timestamp` property as the client sent it.

    The firehose carries it as a 32-bit signed integer: seconds survive (as an
    unsigned value), a millisecond timestamp arrives cut to its low 32 bits. A
    value that reads as seconds within a year of the capture is seconds;
    otherwise it is the millisecond value nearest the capture time with the
    same low 32 bits (exact within ±24 days).
    """
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    unsigned = value % _TWO_32
    arrival_s = arrival_us // 1_000_000
    if abs(unsigned - arrival_s) <= _YEAR_S:
        return unsigned
    arrival_ms = arrival_us // 1000
    if value >= _TWO_32 or value < -(1 << 31):
        return value  # already wider than 32 bits: nothing was cut
    turns = round((arrival_ms - unsigned) / _TWO_32)
    return unsigned + turns * _TWO_32


def _hash64(*parts: bytes) -> int:
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        digest.update(part)
        digest.update(b"\x00")
    return int.from_bytes(digest.digest(), "big", signed=True)


def _replay_of(headers: object) -> int | None:
    if not isinstance(headers, dict):
        return None
    value: Any = headers.get(REPLAY_HEADER)  # a header: whatever the client sent
    if isinstance(value, bytes):
        value = value.decode("ascii", "ignore")
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < (1 << 63) else None


def _string_list(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        value = [value]
    return [text(item) for item in value]


class HeaderTableError(ValueError):
    """The reader could not read a trace message's header table (rabbit/raw.py)."""


def decode(
    routing_key: str | bytes,
    headers: Headers | None,
    body: Body | None,
    arrival_us: int,
    body_limit: int,
    tap_redelivered: bool = False,
    header_bytes: bytes | None = None,
    header_error: str | None = None,
    vhost: str = "",
) -> Captured:
    """One trace message (routing key, headers table, body) as a Captured event.

    `header_bytes`: the encoded header table as it came off the wire, when the
    reader has it (rabbit/raw.py): it identifies the trace message for
    duplicate detection without encoding the headers again. `header_error`:
    why the reader could not read that table; the event is then kept with the
    reason in its properties, in `vhost` (the tap queue's), body and all.
    """
    if header_error is not None:
        return _undecodable(
            routing_key,
            headers,
            body,
            arrival_us,
            body_limit,
            HeaderTableError(header_error),
            vhost,
        )
    try:
        return _decode(
            routing_key, headers, body, arrival_us, body_limit, tap_redelivered, header_bytes
        )
    except Exception as error:  # noqa: BLE001 - a frame must never stop the tap
        return _undecodable(routing_key, headers, body, arrival_us, body_limit, error, vhost)


def _text(value: Any) -> str:
    """text() with a fast path for the common case: a string without NUL."""
    if value.__class__ is str and "\x00" not in value:
        # mypy narrows on type(value) and isinstance(), not on __class__, the fastest.
        return value  # type: ignore[no-any-return]
    return text(value)


def _decode(
    routing_key: str | bytes,
    headers: Headers | None,
    body: Body | None,
    arrival_us: int,
    body_limit: int,
    tap_redelivered: bool,
    header_bytes: bytes | None,
) -> Captured:
    routing_key = _text(routing_key)
    headers = headers if isinstance(headers, dict) else {}
    body = bytes(body or b"")
    get = headers.get
    if routing_key.startswith(DELIVER_PREFIX):
        event, queue = "deliver", routing_key[len(DELIVER_PREFIX) :]
    else:
        event, queue = "publish", ""
    properties = get("properties")
    properties = dict(properties) if isinstance(properties, dict) else {}
    if "timestamp" in properties:
        properties["timestamp"] = recover_timestamp(properties["timestamp"], arrival_us)
    properties_json = dumps(properties)
    routing_keys = _string_list(get("routing_keys")) or []
    routed_queues = _string_list(get("routed_queues")) if event == "publish" else None
    broker_ms = get("timestamp_in_ms")
    captured_us = arrival_us
    if isinstance(broker_ms, int) and not isinstance(broker_ms, bool) and broker_ms > 0:
        captured_us = broker_ms * 1000
    body_hash = hashlib.blake2b(body, digest_size=16).digest()
    fingerprint = _hash64(properties_json, body_hash)
    # The whole trace message: its encoded header table when the reader has it
    # (the broker sends the same bytes again on a redelivery), else re-encoded.
    whole = header_bytes if header_bytes is not None else dumps(headers)
    dedupe_key = _hash64(routing_key.encode(), whole, body_hash)
    channel = get("channel")
    size = len(body)
    correlation_id = properties.get("correlation_id")
    reply_to = properties.get("reply_to")
    captured = Captured.__new__(Captured)
    captured.id = None
    captured.flow_id = None
    captured.backlog = False
    captured.event = event
    captured.captured_us = captured_us
    captured.vhost = _text(get("vhost", ""))
    captured.node = _text(get("node", ""))
    captured.exchange = _text(get("exchange_name", ""))
    captured.routing_key = routing_keys[0] if routing_keys else ""
    captured.routing_keys_json = orjson.dumps(routing_keys).decode()
    captured.routed_queues_json = (
        None if routed_queues is None else orjson.dumps(routed_queues).decode()
    )
    captured.queue = _text(queue)
    captured.properties_json = properties_json.decode()
    captured.correlation_id = "" if correlation_id is None else _text(correlation_id)
    captured.reply_to = "" if reply_to is None else _text(reply_to)
    captured.body = body[:body_limit] if size > body_limit else body
    captured.body_size = size
    captured.body_truncated = size > body_limit
    captured.redelivered = bool(get("redelivered")) if event == "deliver" else False
    captured.user = _text(get("user", ""))
    captured.connection = _text(get("connection", ""))
    captured.channel = channel if isinstance(channel, int) and 0 <= channel < (1 << 31) else None
    captured.replay_of = _replay_of(properties.get("headers"))
    captured.fingerprint = fingerprint
    captured.dedupe_key = dedupe_key
    captured.tap_redelivered = bool(tap_redelivered)
    captured.stamp_error_us = 0
    return captured


def _undecodable(
    routing_key: str | bytes,
    headers: Headers | None,
    body: Body | None,
    arrival_us: int,
    body_limit: int,
    error: Exception,
    vhost: str = "",
) -> Captured:
    body = bytes(body or b"") if isinstance(body, bytes | bytearray | memoryview) else b""
    note = orjson.dumps({"$decode_error": f"{type(error).__name__}: {error}"[:500]})
    key = text(routing_key, 300)
    return Captured(
        event="deliver" if key.startswith(DELIVER_PREFIX) else "publish",
        captured_us=arrival_us,
        vhost=text(headers.get("vhost")) if isinstance(headers, dict) else vhost,
        node="",
        exchange="",
        routing_key="",
        routing_keys_json="[]",
        routed_queues_json=None,
        queue="",
        properties_json=note.decode(),
        correlation_id="",
        reply_to="",
        body=body[:body_limit],
        body_size=len(body),
        body_truncated=len(body) > body_limit,
        redelivered=False,
        user="",
        connection="",
        channel=None,
        replay_of=None,
        fingerprint=0,
        dedupe_key=_hash64(key.encode(), body),
        tap_redelivered=False,
    )


def strip_unstorable(event: Captured) -> None:
    """Keep the event's place in history without what the database refused."""
    event.properties_json = '{"$unstorable": "properties refused by the database"}'
    event.body = b""
    event.body_truncated = event.body_size > 0
    for name in ("node", "user", "connection", "exchange", "routing_key", "queue"):
        value = getattr(event, name)
        setattr(event, name, value.encode("utf-8", "replace").decode("ascii", "replace")[:255])
