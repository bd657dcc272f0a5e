"""AMQP 0-9-1 field tables and basic properties, read straight out of a frame.

The decoder yields the same Python values as pika's (long strings as text
when they are UTF-8, `x` as bytes, `T` as an aware datetime, `D` as a
Decimal) at a fraction of its cost, with two differences: floats stay floats
(pika truncates them to integers), and a `T` beyond datetime's range stays its
number of seconds (pika raises). The tap decodes every trace message's headers with
it (rabbit/raw.py).
"""

import datetime
import decimal
import struct
from typing import TypeAlias

_U8 = struct.Struct(">B").unpack_from
_I8 = struct.Struct(">b").unpack_from
_U16 = struct.Struct(">H").unpack_from
_I16 = struct.Struct(">h").unpack_from
_U32 = struct.Struct(">I").unpack_from
_I32 = struct.Struct(">i").unpack_from
_U64 = struct.Struct(">Q").unpack_from
_I64 = struct.Struct(">q").unpack_from
_F32 = struct.Struct(">f").unpack_from
_F64 = struct.Struct(">d").unpack_from


# What a header table decodes to. Keys and long strings are text when they are
# UTF-8, bytes otherwise (as pika decodes them).
FieldValue: TypeAlias = (
    str
    | bytes
    | bool
    | int
    | float
    | decimal.Decimal
    | datetime.datetime
    | None
    | list["FieldValue"]
    | dict[str | bytes, "FieldValue"]
)
FieldTable: TypeAlias = dict[str | bytes, FieldValue]

# What the handshake sends (encode_table): strings, booleans and nested tables.
HandshakeValue: TypeAlias = str | bool | dict[str, "HandshakeValue"]
HandshakeTable: TypeAlias = dict[str, HandshakeValue]


class AMQPRawError(Exception):
    """The connection failed, the broker closed it, or it spoke nonsense."""


# --- field tables -------------------------------------------------------------


def _text_or_bytes(raw: bytes) -> str | bytes:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _value(data: bytes, offset: int) -> tuple[FieldValue, int]:
    kind = data[offset]
    offset += 1
    if kind == 83:  # S long string
        length = _U32(data, offset)[0]
        offset += 4
        end = offset + length
        return _text_or_bytes(data[offset:end]), end
    if kind == 65:  # A array
        length = _U32(data, offset)[0]
        offset += 4
        end = offset + length
        values: list[FieldValue] = []
        while offset < end:
            value, offset = _value(data, offset)
            values.append(value)
        if offset != end:
            raise AMQPRawError("a field array's values run past its declared length")
        return values, end
    if kind == 70:  # F table
        return _table(data, offset)
    if kind == 73:  # I int32
        return _I32(data, offset)[0], offset + 4
    if kind == 108 or kind == 76:  # l / L int64
        return _I64(data, offset)[0], offset + 8
    if kind == 116:  # t bool
        return data[offset] != 0, offset + 1
    if kind == 98:  # b int8
        return _I8(data, offset)[0], offset + 1
    if kind == 66:  # B uint8
        return data[offset], offset + 1
    if kind == 115 or kind == 85:  # s / U int16
        return _I16(data, offset)[0], offset + 2
    if kind == 117:  # u uint16
        return _U16(data, offset)[0], offset + 2
    if kind == 105:  # i uint32
        return _U32(data, offset)[0], offset + 4
    if kind == 102:  # f float
        return _F32(data, offset)[0], offset + 4
    if kind == 100:  # d double
        return _F64(data, offset)[0], offset + 8
    if kind == 84:  # T timestamp
        seconds = _U64(data, offset)[0]
        try:
            return datetime.datetime.fromtimestamp(seconds, datetime.UTC), offset + 8
        except (OverflowError, ValueError, OSError):
            # Past the year 9999 (pika raises here): the seconds as they came,
            # so the rest of the table is still read.
            return seconds, offset + 8
    if kind == 68:  # D decimal
        scale = data[offset]
        raw = _I32(data, offset + 1)[0]
        return decimal.Decimal(raw) * (decimal.Decimal(10) ** -scale), offset + 5
    if kind == 120:  # x byte array
        length = _U32(data, offset)[0]
        offset += 4
        return bytes(data[offset : offset + length]), offset + length
    if kind == 86:  # V void
        return None, offset
    raise AMQPRawError(f"unknown field type {chr(kind)!r} in a header table")


def _table(data: bytes, offset: int) -> tuple[FieldTable, int]:
    """A field table at `offset`: (dict, offset after it)."""
    end = offset + 4 + _U32(data, offset)[0]
    offset += 4
    result: FieldTable = {}
    while offset < end:
        length = data[offset]
        offset += 1
        key = _text_or_bytes(data[offset : offset + length])
        offset += length
        result[key], offset = _value(data, offset)
    if offset != end:
        # Damaged: its last entry runs past the length it declares. Reading on
        # from either place would make up keys or values; refuse it instead.
        raise AMQPRawError("a field table's entries run past its declared length")
    return result, end


def decode_table(data: bytes) -> FieldTable:
    """A whole encoded field table (with its length prefix) as a dict."""
    return _table(data, 0)[0]


def read_shortstr(data: bytes, offset: int) -> tuple[bytes, int]:
    length = data[offset]
    offset += 1
    return data[offset : offset + length], offset + length


def encode_shortstr(value: str | bytes) -> bytes:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if len(raw) > 255:
        raise AMQPRawError("a short string is longer than 255 bytes")
    return bytes([len(raw)]) + raw


def encode_longstr(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


def encode_table(table: HandshakeTable) -> bytes:
    """Only what the handshake sends: strings, booleans and nested tables."""
    parts: list[bytes] = []
    for key, value in table.items():
        parts.append(encode_shortstr(key))
        if isinstance(value, bool):
            parts.append(b"t" + (b"\x01" if value else b"\x00"))
        elif isinstance(value, dict):
            parts.append(b"F" + encode_table(value))
        else:
            parts.append(b"S" + encode_longstr(str(value).encode("utf-8")))
    body = b"".join(parts)
    return struct.pack(">I", len(body)) + body


# --- properties of a content header ------------------------------------------

# (flag bit, name, reader) in the order AMQP lays basic properties out.
_SHORTSTR, _OCTET, _TABLE, _U64_PROP = "shortstr", "octet", "table", "u64"
_BASIC_PROPERTIES: tuple[tuple[int, str, str], ...] = (
    (15, "content_type", _SHORTSTR),
    (14, "content_encoding", _SHORTSTR),
    (13, "headers", _TABLE),
    (12, "delivery_mode", _OCTET),
    (11, "priority", _OCTET),
    (10, "correlation_id", _SHORTSTR),
    (9, "reply_to", _SHORTSTR),
    (8, "expiration", _SHORTSTR),
    (7, "message_id", _SHORTSTR),
    (6, "timestamp", _U64_PROP),
    (5, "type", _SHORTSTR),
    (4, "user_id", _SHORTSTR),
    (3, "app_id", _SHORTSTR),
    (2, "cluster_id", _SHORTSTR),
)
_HEADERS_ONLY = 1 << 13


def headers_of(data: bytes, offset: int, flags: int) -> FieldTable | None:
    """The `headers` property of a content header (the rest is skipped)."""
    if flags == _HEADERS_ONLY:  # what the firehose sends: headers alone
        return _table(data, offset)[0]
    headers: FieldTable | None = None
    for bit, _name, kind in _BASIC_PROPERTIES:
        if not flags & (1 << bit):
            continue
        if kind == _SHORTSTR:
            offset += 1 + data[offset]
        elif kind == _OCTET:
            offset += 1
        elif kind == _U64_PROP:
            offset += 8
        else:
            headers, offset = _table(data, offset)
    return headers
