"""Trace messages the broker cannot hand to the tap, taken through the management API.

The firehose routes a delivery as `deliver.<queue>` and a publish as
`publish.<exchange>`. For a queue or exchange name over 247 bytes that routing
key passes AMQP's 255-byte short-string limit: the broker cannot encode the
`basic.deliver` frame and closes the tap's connection with 541 INTERNAL_ERROR.
The trace message stays at the head of the tap queue and would stop every
later connection the same way. The management API's "get messages" runs inside
the broker and answers in JSON, where a routing key has no length limit, so the
tap reads such a message there, stores it, and only then removes it.

JSON keeps less than AMQP: header values that were not UTF-8 come as
"Not UTF-8, base64 is: ..." (turned back into bytes here); numbers and
strings are kept as JSON gives them. A rescued event is marked backlog: its
time is when it was taken, not when the broker traced it.
"""

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias, overload

from rabbit.management import ManagementClient
from tracer.tap import decoding
from tracer.tap.decoding import Captured

SHORTSTR_MAX = 255
NOT_UTF8 = "Not UTF-8, base64 is: "
_MAX_DEPTH = 64


# A message as the management API's "get messages" gives it (parsed JSON).
ApiMessage: TypeAlias = Mapping[str, Any]


def undeliverable(message: ApiMessage) -> bool:
    """A management API message whose routing key AMQP cannot carry."""
    return len(str(message.get("routing_key", "")).encode()) > SHORTSTR_MAX


@overload
def _restored(value: dict[str, Any], depth: int = 0) -> dict[str, Any]: ...
@overload
def _restored(value: object, depth: int = 0) -> object: ...
def _restored(value: object, depth: int = 0) -> object:
    if isinstance(value, str) and value.startswith(NOT_UTF8):
        try:
            return base64.b64decode(value[len(NOT_UTF8) :], validate=True)
        except (binascii.Error, ValueError):
            return value
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {key: _restored(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_restored(item, depth + 1) for item in value]
    return value


def captured(message: ApiMessage, arrival_us: int, body_limit: int) -> Captured:
    """A management API message (payload in base64) as a Captured event."""
    properties = message.get("properties")
    headers = properties.get("headers") if isinstance(properties, dict) else None
    headers = _restored(headers) if isinstance(headers, dict) else {}
    payload = message.get("payload") or ""
    if message.get("payload_encoding") == "base64":
        body = base64.b64decode(payload)
    else:
        body = payload.encode()
    event = decoding.decode(message.get("routing_key", ""), headers, body, arrival_us, body_limit)
    size = message.get("payload_bytes")
    if isinstance(size, int) and size > event.body_size:
        # The management API cut the payload at our body limit: keep the real size.
        event.body_size = size
        event.body_truncated = True
    event.backlog = True
    return event


def _same(one: ApiMessage, other: ApiMessage) -> bool:
    return all(one.get(key) == other.get(key) for key in ("routing_key", "payload", "properties"))


def rescue_head(
    client: ManagementClient,
    vhost: str,
    queue: str,
    body_limit: int,
    store: Callable[[Captured], None],
    clock: Callable[[], int],
) -> int:
    """Store and remove the head of `queue` if the broker cannot deliver it.

    `store(event)` returns once the event is committed; `clock()` gives the
    arrival time. Stored before removed: a crash in between keeps the message
    (it would be stored again), never loses it. Returns how many were taken.
    """
    head = client.peek(vhost, queue, count=1, truncate=body_limit, encoding="base64")
    if not head or not undeliverable(head[0]):
        return 0
    store(captured(head[0], clock(), body_limit))
    taken = client.take(vhost, queue, count=1, truncate=body_limit)
    for message in taken:
        if not _same(message, head[0]):
            # Someone else emptied the head meanwhile: what we removed is another message.
            store(captured(message, clock(), body_limit))
    return len(taken)
