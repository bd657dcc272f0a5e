"""Browsing a stream queue from the console: where to start, and the messages shaped like
a peek's (console/peek.py), each with its offset.

Reading a stream takes nothing away (rabbit/streams.py); the page pages on
with the offset after the last message shown.
"""

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from console.peek import PeekedMessage, masked_fields, peeked_message
from rabbit.streams import MAX_READ, OFFSET_HEADER, StreamMessage, StreamStart

STARTS = ("first", "last", "next", "offset", "time")
START_CHOICES = (
    ("first", "the first message kept"),
    ("last", "the last chunk written"),
    ("next", "new messages only"),
    ("offset", "the offset below"),
    ("time", "the time below"),
)
PAGE_SIZES = (10, 20, 50, 100)
DEFAULT_COUNT = 20


class BadStart(ValueError):
    """A start the form cannot use, in words."""


@dataclass(frozen=True)
class Browse:
    """What the operator asked for: where to start and how many."""

    start: str  # one of STARTS
    offset: int | None
    time: datetime | None
    count: int

    @property
    def argument(self) -> StreamStart:
        """The value of x-stream-offset for this browse."""
        if self.start == "offset" and self.offset is not None:
            return self.offset
        if self.start == "time" and self.time is not None:
            return self.time
        return self.start

    @property
    def words(self) -> str:
        if self.start == "offset":
            return f"from offset {self.offset:,}"
        if self.start == "time" and self.time is not None:
            return f"from {self.time:%Y-%m-%d %H:%M:%S} UTC"
        return {
            "first": "from the first message kept",
            "last": "from the last chunk written",
            "next": "only messages published from now on",
        }[self.start]


def parse(params: Mapping[str, str]) -> Browse:
    """The browse a form or link asks for; raises BadStart with the reason."""
    start = params.get("from") or "first"
    if start not in STARTS:
        raise BadStart(f"Start from one of: {', '.join(STARTS)}.")
    try:
        count = int(params.get("count") or DEFAULT_COUNT)
    except ValueError:
        raise BadStart("How many messages must be a whole number.") from None
    count = min(max(count, 1), MAX_READ)
    offset = None
    when = None
    if start == "offset":
        try:
            offset = int(params.get("offset", ""))
        except ValueError:
            raise BadStart("An offset is a whole number, 0 or more.") from None
        if offset < 0:
            raise BadStart("An offset is a whole number, 0 or more.")
    if start == "time":
        text = (params.get("time") or "").strip()
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise BadStart(
                "A time is a date and time such as 2026-12-02T08:30 (UTC unless it says otherwise)."
            ) from None
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return Browse(start, offset, when, count)


@dataclass
class StreamEntry:
    offset: int | None
    message: PeekedMessage


def entries(messages: list[StreamMessage]) -> list[StreamEntry]:
    """Each message shown as a peek shows it (masked, text, JSON, hex, headers)."""
    fields = masked_fields()
    shown = []
    for position, message in enumerate(messages, start=1):
        properties = dict(message.properties)
        headers = dict(properties.get("headers") or {})
        headers.pop(OFFSET_HEADER, None)  # shown as the entry's offset
        if headers:
            properties["headers"] = headers
        else:
            properties.pop("headers", None)
        raw = {
            "exchange": message.exchange,
            "routing_key": message.routing_key,
            "redelivered": False,
            "payload": base64.b64encode(message.body).decode("ascii"),
            "payload_encoding": "base64",
            "payload_bytes": message.size,
            "properties": properties,
        }
        shown.append(StreamEntry(message.offset, peeked_message(position, raw, fields)))
    return shown


def next_offset(shown: list[StreamEntry]) -> int | None:
    """Where the next page starts: after the last offset shown."""
    offsets = [entry.offset for entry in shown if entry.offset is not None]
    return max(offsets) + 1 if offsets else None
