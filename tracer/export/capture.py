"""Capture files: the JSON Lines export of messages with their bodies, and
importing one back (POST /api/imports, the Imports page).

What leaves Warren is masked, bodies too: `exported_body` masks a body as the
pages do, and a compressed body is decompressed, masked and compressed again
when masking changed it, so a replay of an imported message sends the same
encoding. A masked value stays masked in the file, and so in a replay of it.

`import_capture` checks every line before it stores anything: one bad line
and nothing is imported, and the answer says which lines and why. The messages
are stored as captured events of their vhosts (no flows are made of them),
their timeline shifted so the newest is the import's time (the spacing kept,
for a replay that keeps timing), and recorded with their ids in the file.
"""

import base64
import binascii
import gzip
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from tracer.export.models import Import, ImportedMessage
from tracer.masking import mask_body
from tracer.models import Message

MAX_LINES = 100_000
MAX_ERRORS = 20
STORE_CHUNK = 1000
COMPRESSED = ("gzip", "x-gzip", "deflate")
MAX_ID = 2**63 - 1


def exported_body(message: Message, names: frozenset[str]) -> bytes:
    """The body as an export carries it: masked, its compression kept."""
    raw = bytes(message.body or b"")
    encoding = str((message.properties or {}).get("content_encoding") or "").strip().lower()
    if encoding in COMPRESSED and raw and not message.body_truncated:
        try:
            inflated = zlib.decompressobj(32 + zlib.MAX_WBITS).decompress(raw)
        except zlib.error:
            return mask_body(raw, names)
        masked = mask_body(inflated, names)
        if masked == inflated:
            return raw
        return zlib.compress(masked) if encoding == "deflate" else gzip.compress(masked)
    return mask_body(raw, names)


class CaptureError(ValueError):
    """A capture file that cannot be imported, with every reason found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass
class Imported:
    capture: Import
    message_ids: list[int] = field(default_factory=list)


def _text(line: dict[str, Any], name: str, default: str = "") -> str:
    value = line.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValueError(f"'{name}' must be text")
    if "\x00" in value:
        raise ValueError(f"'{name}' contains a NUL character")
    return value


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _message(line: Any) -> tuple[Message, datetime, int | None]:
    """(unsaved Message, its capture time, its id in the file) from one line."""
    if not isinstance(line, dict):
        raise ValueError("a line must be a JSON object (one message of an export)")
    if b"\\u0000" in orjson.dumps(line):
        raise ValueError("a value contains a NUL character, which no message field may hold")
    event = line.get("event")
    if event not in (Message.PUBLISH, Message.DELIVER):
        raise ValueError("'event' must be publish or deliver")
    captured = parse_datetime(str(line.get("captured_at") or ""))
    if captured is None or captured.tzinfo is None:
        raise ValueError(
            "'captured_at' must be an ISO 8601 time with its zone, as exports write it"
        )
    if "body_base64" not in line:
        raise ValueError("no 'body_base64': export with bodies (format=jsonl, bodies=1)")
    try:
        body = base64.b64decode(str(line["body_base64"]), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("'body_base64' is not base64") from None
    vhost = _text(line, "vhost")
    if not vhost:
        raise ValueError("'vhost' is missing")
    properties = line.get("properties") or {}
    if not isinstance(properties, dict):
        raise ValueError("'properties' must be an object")
    routing_keys = line.get("routing_keys") or []
    if not isinstance(routing_keys, list) or not all(isinstance(k, str) for k in routing_keys):
        raise ValueError("'routing_keys' must be a list of text")
    routed = line.get("routed_queues")
    if routed is not None and (
        not isinstance(routed, list) or not all(isinstance(q, str) for q in routed)
    ):
        raise ValueError("'routed_queues' must be a list of text or null")
    channel = line.get("channel")
    if channel is not None and not _whole(channel, 0, 65535):
        raise ValueError("'channel' must be a channel number (0 to 65535) or null")
    original = line.get("id")
    if original is not None and not _whole(original, 1, MAX_ID):
        raise ValueError(f"'id' must be a whole number from 1 to {MAX_ID}")
    exchange = _text(line, "exchange")
    queue = _text(line, "queue") if event == Message.DELIVER else ""
    correlation_id = _text(line, "correlation_id")
    reply_to = _text(line, "reply_to")
    routing_key = routing_keys[0] if routing_keys else ""
    body_size = line.get("body_size", len(body))
    if not _whole(body_size, len(body), MAX_ID):
        body_size = len(body)
    message = Message(
        event=event,
        vhost=vhost,
        node=_text(line, "node"),
        exchange=exchange,
        routing_key=routing_key,
        routing_keys=routing_keys,
        routed_queues=routed if event == Message.PUBLISH else None,
        queue=queue,
        properties=properties,
        correlation_id=correlation_id,
        reply_to=reply_to,
        reply_key=reply_to or (routing_key if event == Message.PUBLISH else queue),
        body=body,
        body_size=body_size,
        body_truncated=bool(line.get("body_truncated")) or body_size > len(body),
        redelivered=bool(line.get("redelivered")),
        user=_text(line, "user"),
        connection=_text(line, "connection"),
        channel=channel,
    )
    return message, captured, original


def read_capture(lines: Iterable[bytes]) -> list[tuple[Message, datetime, int | None]]:
    """Every line parsed and checked; CaptureError with up to MAX_ERRORS reasons."""
    parsed: list[tuple[Message, datetime, int | None]] = []
    errors: list[str] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        if len(parsed) >= MAX_LINES:
            errors.append(f"the file has more than {MAX_LINES:,} messages: split it")
            break
        try:
            parsed.append(_message(orjson.loads(raw)))
        except orjson.JSONDecodeError:
            errors.append(f"line {number}: not JSON")
        except ValueError as error:
            errors.append(f"line {number}: {error}")
        if len(errors) >= MAX_ERRORS:
            errors.append("(more lines not checked)")
            break
    if errors:
        raise CaptureError(errors)
    if not parsed:
        raise CaptureError(["the file holds no messages (a JSON Lines export, one message a line)"])
    return parsed


def import_capture(
    lines: Iterable[bytes],
    user: AbstractBaseUser | AnonymousUser | None = None,
    filename: str = "",
) -> Imported:
    """Stores a capture file's messages; all or nothing."""
    parsed = read_capture(lines)
    now = timezone.now()
    newest = max(captured for _, captured, _ in parsed)
    shift = now - newest
    oldest = min(captured for _, captured, _ in parsed)
    try:
        oldest + shift  # noqa: B018 - the earliest shifted time must be a time
    except OverflowError:
        raise CaptureError(
            ["the file's capture times span more years than a time can hold"]
        ) from None
    vhosts = sorted({message.vhost for message, _, _ in parsed})
    by_time = sorted(parsed, key=lambda item: (item[1], item[2] or 0))
    with transaction.atomic():
        capture = Import.objects.create(
            created_at=now,
            created_by=user if isinstance(user, User) else None,
            username=getattr(user, "username", "") or "",
            filename=filename[:500],
            messages=len(parsed),
            vhosts=vhosts,
            first_captured_at=by_time[0][1],
            last_captured_at=newest,
        )
        ids: list[int] = []
        for start in range(0, len(by_time), STORE_CHUNK):
            chunk = by_time[start : start + STORE_CHUNK]
            for message, captured, _ in chunk:
                message.captured_at = captured + shift
            stored = Message.objects.bulk_create([message for message, _, _ in chunk])
            ImportedMessage.objects.bulk_create(
                ImportedMessage(capture=capture, message_id=message.id, original_id=original)
                for message, (_, _, original) in zip(stored, chunk, strict=True)
            )
            ids.extend(message.id for message in stored)
    return Imported(capture, ids)
