"""Messages got from a queue for a look, shaped for the page.

The broker cuts each body to the size Warren asks for (`truncate`) and still
reports the full size (`payload_bytes`), so a 50 MiB message never travels in
full. Bodies are offered as text, pretty JSON and hex; header values and JSON
fields named in WARREN_MASKED_FIELDS are masked in every view.
"""

import base64
import binascii
import json
from dataclasses import dataclass, field

from django.conf import settings

MAX_PEEK = 50
DEFAULT_PEEK = 5
HEX_LIMIT = 4096
MASK = "••••••"


def body_limit():
    """Bytes of each body fetched for a peek: the stored-body limit, within 4 KiB–1 MiB."""
    return min(max(int(settings.WARREN_BODY_LIMIT or 0), 4096), 1024 * 1024)


def masked_fields():
    return {name.lower() for name in getattr(settings, "WARREN_MASKED_FIELDS", [])}


def mask(value, fields):
    """(value with masked fields replaced, how many were masked), for JSON-like data."""
    count = 0
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if str(key).lower() in fields and item not in (None, ""):
                out[key] = MASK
                count += 1
            else:
                out[key], inner = mask(item, fields)
                count += inner
        return out, count
    if isinstance(value, list):
        out = []
        for item in value:
            masked, inner = mask(item, fields)
            out.append(masked)
            count += inner
        return out, count
    return value, count


def hex_dump(data, limit=HEX_LIMIT):
    """xxd-style lines: offset, 16 bytes in hex, the printable ASCII."""
    lines = []
    for offset in range(0, min(len(data), limit), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<47}  {text}")
    return "\n".join(lines)


def _decode_text(data, cut):
    """The body as text, or None when it is not UTF-8.

    A body cut by the broker may end inside a multi-byte character; up to
    three trailing bytes are dropped before giving up.
    """
    for drop in range(0, 4 if cut else 1):
        try:
            return data[: len(data) - drop].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _display(value):
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True, default=str)


@dataclass
class DeathRecord:
    """One entry of x-death: why and where a message was dead-lettered."""

    queue: str
    reason: str
    count: int
    exchange: str
    routing_keys: list
    time: str


def x_death(headers):
    records = []
    for entry in (headers or {}).get("x-death") or []:
        if not isinstance(entry, dict):
            continue
        keys = entry.get("routing-keys") or []
        records.append(
            DeathRecord(
                queue=str(entry.get("queue", "")),
                reason=str(entry.get("reason", "")),
                count=int(entry.get("count") or 0),
                exchange=str(entry.get("exchange", "")),
                routing_keys=[str(k) for k in keys] if isinstance(keys, list) else [str(keys)],
                time=str(entry.get("time", "")),
            )
        )
    return records


@dataclass
class PeekedMessage:
    position: int
    exchange: str
    routing_key: str
    redelivered: bool
    size: int
    shown: int
    properties: list
    headers: list
    deaths: list
    text: str | None
    pretty_json: str | None
    hex: str
    hex_cut: bool
    masked: int = 0
    notes: list = field(default_factory=list)

    @property
    def cut(self):
        return self.shown < self.size

    @property
    def binary(self):
        return self.text is None


def _body_bytes(raw):
    payload = raw.get("payload") or ""
    if raw.get("payload_encoding") == "base64":
        try:
            return base64.b64decode(payload)
        except (binascii.Error, ValueError):
            return payload.encode("utf-8", "replace")
    return payload.encode("utf-8")


def peeked_message(position, raw, fields=None):
    fields = masked_fields() if fields is None else fields
    properties = raw.get("properties") or {}
    if not isinstance(properties, dict):  # the API sends [] for "no properties"
        properties = {}
    headers = properties.get("headers") or {}
    if not isinstance(headers, dict):
        headers = {}
    headers, masked = mask(headers, fields)
    data = _body_bytes(raw)
    size = int(raw.get("payload_bytes") or len(data))
    cut = len(data) < size
    notes = []
    text = _decode_text(data, cut)
    pretty = None
    if text is not None and not cut:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        else:
            parsed, body_masked = mask(parsed, fields)
            pretty = json.dumps(parsed, ensure_ascii=False, indent=2)
            if body_masked:
                masked += body_masked
                # Every view shows the masked body, not only the JSON one.
                text = json.dumps(parsed, ensure_ascii=False)
                data = text.encode("utf-8")
    elif text is not None and cut and text.lstrip()[:1] in ("{", "["):
        notes.append("The body is cut, so it cannot be shown as JSON.")
    return PeekedMessage(
        position=position,
        exchange=raw.get("exchange", ""),
        routing_key=raw.get("routing_key", ""),
        redelivered=bool(raw.get("redelivered")),
        size=size,
        shown=len(_body_bytes(raw)),
        properties=[(k, _display(v)) for k, v in sorted(properties.items()) if k != "headers"],
        headers=[(k, _display(v)) for k, v in sorted(headers.items())],
        deaths=x_death(headers),
        text=text,
        pretty_json=pretty,
        hex=hex_dump(data),
        hex_cut=len(data) > HEX_LIMIT,
        masked=masked,
        notes=notes,
    )


def peeked_messages(raw_list):
    fields = masked_fields()
    return [peeked_message(i, raw, fields) for i, raw in enumerate(raw_list or [], start=1)]
