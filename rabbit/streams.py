"""Reading a stream queue without consuming it away (pika).

A stream keeps its messages whatever its consumers do: an AMQP 0-9-1 consumer
names where to start with `x-stream-offset` (`first`, `last`, `next`, an
offset number, or a timestamp), must ack manually with a bounded prefetch,
and is cancelled once it has what it came for. Nothing is removed, no other
consumer's position moves; each delivery carries its offset in the header
`x-stream-offset`. Only a stream may be read like this: a classic or quorum
queue would hand its messages over for good, so the caller checks the type.
"""

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pika

from rabbit import amqp

MAX_READ = 100
OFFSET_HEADER = "x-stream-offset"

StreamStart = str | int | datetime  # "first" | "last" | "next" | offset | timestamp


@dataclass
class StreamMessage:
    """One message as read, shaped like the management API's "get messages" answer
    (so that the console shows it as it shows a peek), with its offset."""

    offset: int | None
    exchange: str
    routing_key: str
    properties: dict[str, Any]
    body: bytes  # at most the asked limit
    size: int


@dataclass
class StreamRead:
    messages: list[StreamMessage] = field(default_factory=list)
    waited_out: bool = False  # stopped because nothing more came in time


def _properties(props: pika.BasicProperties) -> dict[str, Any]:
    return {
        name: getattr(props, name)
        for name in amqp.BASIC_PROPERTY_NAMES
        if getattr(props, name) is not None
    }


def read(
    url: str,
    vhost: str,
    queue: str,
    start: StreamStart,
    count: int,
    body_limit: int,
    idle_s: float = 1.5,
    deadline_s: float = 8.0,
) -> StreamRead:
    """Up to `count` messages of stream `queue` from `start`; the consumer is then
    cancelled and what it read acked. Stops early when nothing comes for `idle_s` (the end of the
    stream) or after `deadline_s` in all."""
    count = min(max(count, 1), MAX_READ)
    result = StreamRead()
    connection = amqp.blocking_connection(url, vhost=vhost, name="warren-stream-browser")
    try:
        channel = connection.channel()
        # The broker sends at most `count` unacked messages (its credit): nothing is
        # acked until the consumer is cancelled, so nothing else is in flight then and
        # pika has nothing to reject on cancelling (a stream refuses basic.reject and
        # basic.nack, closing the connection with 540). The acks go after the cancel.
        channel.basic_qos(prefetch_count=count)
        ends_at = time.monotonic() + deadline_s
        consumer = channel.consume(
            queue,
            auto_ack=False,
            arguments={OFFSET_HEADER: start},
            inactivity_timeout=idle_s,
        )
        last_tag = None
        for method, props, body in consumer:
            if method is None:
                result.waited_out = True
                break
            last_tag = method.delivery_tag
            properties = _properties(props)
            offset = (properties.get("headers") or {}).get(OFFSET_HEADER)
            result.messages.append(
                StreamMessage(
                    offset=int(offset) if isinstance(offset, int) else None,
                    exchange=method.exchange,
                    routing_key=method.routing_key,
                    properties=properties,
                    body=body[:body_limit],
                    size=len(body),
                )
            )
            if len(result.messages) >= count:
                break
            if time.monotonic() > ends_at:
                result.waited_out = True
                break
        channel.cancel()
        if last_tag is not None:
            channel.basic_ack(last_tag, multiple=True)
    finally:
        if connection.is_open:
            connection.close()
    return result
