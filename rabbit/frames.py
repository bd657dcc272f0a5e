"""AMQP frames to deliveries, for the tap's raw reader (rabbit/raw.py): the hot path.

Frames are parsed straight out of the bytes read (no frame objects): a
Basic.Deliver, its content header (the property flags and list kept as they
came, the header table decoded only when asked) and its body frames become one
Delivery. `message_ends` finds, in bytes still waiting in the socket, where
each whole message ends, so the reader can take each with a read of its own.
"""

import struct
from collections.abc import Callable

from rabbit.delivery import Delivery, PartialDelivery
from rabbit.field_tables import AMQPRawError, headers_of

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE

_FRAME = struct.Struct(">BHI")
_DELIVER_TAG = struct.Struct(">QB").unpack_from
_CONTENT = struct.Struct(">HHQH").unpack_from
_BODY_SIZE = struct.Struct(">Q").unpack_from


class DeliveryParser:
    """Deliveries out of a connection's bytes, in order; keeps what a read cut
    off (`leftover`) and the delivery still being assembled (`partial`)."""

    def __init__(self, decode_headers: bool, on_method: Callable[[int, bytes], None]) -> None:
        self.decode_headers = decode_headers
        self.on_method = on_method  # any other method: (channel, payload)
        self.leftover = b""
        self.partial: PartialDelivery | None = None
        # Where `leftover` starts in the connection's stream (the reader sets it
        # when the consumer starts), and where each delivery of the last parse
        # ended in it: rabbit/packet_stamps.py stamps by stream offset.
        self.stream_offset = 0
        self.delivery_ends: list[int] = []
        # The newest delivery tag a Basic.Deliver brought, even when the broker
        # closed the connection in the same read (a parse that raises hands on
        # none of that read's deliveries): how many the broker counts unacked.
        self.last_tag = 0

    def message_ends(self, chunk: bytes) -> list[tuple[int, bool]]:
        """Offsets in `chunk` (what waits after what is left over) where a whole
        message ends (True: a delivery is then complete), or any frame that
        stands alone (another method, a heartbeat: False); when none does, where
        the last whole frame ends, or all of it: a big message's frames are then
        taken as they come."""
        leftover = self.leftover
        data = leftover + chunk if leftover else chunk
        partial = self.partial
        in_message = partial is not None
        remaining = partial.size - partial.got if partial is not None and partial.raw else 0
        ends: list[tuple[int, bool]] = []
        pos = 0
        size_all = len(data)
        unpack_frame = _FRAME.unpack_from
        while size_all - pos >= 8:
            kind, _channel, size = unpack_frame(data, pos)
            start = pos + 7
            end = start + size
            if end >= size_all:
                break
            pos = end + 1
            if kind == FRAME_METHOD:
                if data[start : start + 4] == b"\x00\x3c\x00\x3c":  # Basic.Deliver
                    in_message = True
                else:
                    ends.append((pos, False))
            elif kind == FRAME_HEADER:
                remaining = _BODY_SIZE(data, start + 4)[0]
                if remaining == 0:
                    ends.append((pos, True))
                    in_message = False
            elif kind == FRAME_BODY:
                remaining -= size
                if remaining <= 0:
                    ends.append((pos, True))
                    in_message = False
            elif not in_message:
                ends.append((pos, False))
        if not ends:
            ends.append((pos if pos else size_all, False))
        skip = len(leftover)
        return [(end - skip, delivers) for end, delivers in ends]

    def parse(self, chunk: bytes) -> list[Delivery]:
        """The deliveries `chunk` completes (after what was left over)."""
        data = self.leftover + chunk if self.leftover else chunk
        out: list[Delivery] = []
        base = self.stream_offset
        ends: list[int] = []
        self.delivery_ends = ends
        pos = 0
        size_all = len(data)
        unpack_frame = _FRAME.unpack_from
        partial = self.partial
        while size_all - pos >= 8:
            kind, channel, size = unpack_frame(data, pos)
            start = pos + 7
            end = start + size
            if end >= size_all:
                break
            if data[end] != FRAME_END:
                raise AMQPRawError("bad frame end from the broker")
            pos = end + 1
            if kind == FRAME_BODY:
                assert partial is not None, "a content frame came without its Basic.Deliver"
                partial.parts.append(data[start:end])
                partial.got += size
                if partial.got >= partial.size:
                    parts = partial.parts
                    body = parts[0] if len(parts) == 1 else b"".join(parts)
                    out.append(
                        Delivery(
                            partial.tag,
                            partial.redelivered,
                            partial.routing_key,
                            partial.headers,
                            body,
                            partial.raw,
                            partial.header_error,
                        )
                    )
                    ends.append(base + pos)
                    partial = None
            elif kind == FRAME_METHOD:
                if data[start : start + 4] == b"\x00\x3c\x00\x3c":  # Basic.Deliver
                    offset = start + 5 + data[start + 4]  # past the consumer tag
                    tag, redelivered = _DELIVER_TAG(data, offset)
                    self.last_tag = tag
                    offset += 9
                    offset += 1 + data[offset]  # past the exchange
                    length = data[offset]
                    routing_key = data[offset + 1 : offset + 1 + length]
                    partial = PartialDelivery(
                        tag, bool(redelivered), routing_key, None, 0, [], 0, b"", None
                    )
                else:
                    self.partial = partial
                    self.on_method(channel, data[start:end])
            elif kind == FRAME_HEADER:
                _class, _weight, body_size, flags = _CONTENT(data, start)
                assert partial is not None, "a content frame came without its Basic.Deliver"
                if self.decode_headers:
                    try:
                        partial.headers = headers_of(data, start + 14, flags)
                    except Exception as error:  # noqa: BLE001 - whatever the bytes, read on
                        partial.header_error = f"{type(error).__name__}: {error}"[:500]
                partial.size = body_size
                partial.raw = data[start + 12 : end]  # property flags and list
                if body_size == 0:
                    out.append(
                        Delivery(
                            partial.tag,
                            partial.redelivered,
                            partial.routing_key,
                            partial.headers,
                            b"",
                            partial.raw,
                            partial.header_error,
                        )
                    )
                    ends.append(base + pos)
                    partial = None
            # heartbeats need nothing: any frame shows the broker is there
        self.partial = partial
        self.leftover = data[pos:]
        self.stream_offset = base + pos
        return out
