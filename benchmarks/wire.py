"""The wire as ground truth: AMQP messages on lo:5672 as the kernel saw them, to
split a flow's timing error into the broker's part and the tap's own.

A packet socket (AF_PACKET, root only) on the loopback device, filtered in the
kernel to TCP port 5672 (a classic BPF program: only AMQP packets reach this
process), receives each packet with the kernel's timestamp. On loopback the
packet a receiving socket gets is the same buffer the packet socket saw, so
its stamp is the one the tap's own socket reports for it (SO_TIMESTAMPNS).
Each TCP stream is reassembled from its first byte (streams already open when
the capture started are left out) and parsed into AMQP frames; a message is
recorded when its last frame is whole, with the stamp of the packet that
brought that byte:

- a client's Basic.Publish (`publish`): the request or reply reaching the broker;
- the broker's Basic.Deliver from `amq.rabbitmq.trace` (`trace`): the trace
  message reaching the tap's socket;
- any other Basic.Deliver (`deliver`): a message reaching a consumer.

Then, per traced event: broker error = trace on the wire − the client's publish
on the wire (which no tap can correct), tap error = Warren's stamp − the trace
on the wire (the tap's own). Bodies identify messages: the load sends unique ones.
Why by hand: no packet-capture library is in this project's dependencies, and
tshark/tcpdump are not on a plain machine; this needs a filter, a timestamp
and the TCP payload, nothing more.
"""

import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from rabbit.arrival import SO_TIMESTAMPNS, STAMP_SPACE, kernel_stamp_ns
from rabbit.packet_stamps import (
    ETH_P_ALL,
    PACKET_HOST,
    PACKET_STATISTICS,
    SO_RCVBUFFORCE,
    SOL_PACKET,
    attach_filter,
)

AMQP_PORT = 5672
TRACE_EXCHANGE = b"amq.rabbitmq.trace"

# Classic BPF: IPv4, TCP, not a fragment, source or destination port 5672.
_FILTER = (
    (0x28, 0, 0, 12),  # ldh [12]: ethertype
    (0x15, 0, 10, 0x0800),  # IPv4, else reject
    (0x30, 0, 0, 23),  # ldb [23]: protocol
    (0x15, 0, 8, 6),  # TCP, else reject
    (0x28, 0, 0, 20),  # ldh [20]: flags and fragment offset
    (0x45, 6, 0, 0x1FFF),  # a fragment: reject
    (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf): IP header length
    (0x48, 0, 0, 14),  # ldh [x+14]: source port
    (0x15, 2, 0, AMQP_PORT),
    (0x48, 0, 0, 16),  # ldh [x+16]: destination port
    (0x15, 0, 1, AMQP_PORT),
    (0x06, 0, 0, 0x40000),  # accept
    (0x06, 0, 0, 0),  # reject
)


@dataclass(frozen=True, slots=True)
class WireMessage:
    at_ns: int  # the kernel's stamp of the packet that brought its last byte
    kind: str  # "publish" (client to broker), "trace" or "deliver" (broker to client)
    exchange: bytes
    routing_key: bytes
    body: bytes


@dataclass(slots=True)
class _Stream:
    """One direction of one TCP connection, as AMQP frames."""

    buffer: bytearray = field(default_factory=bytearray)
    started: bool = False
    method: tuple[str, bytes, bytes] | None = None  # kind, exchange, routing key
    size: int = 0
    parts: list[bytes] = field(default_factory=list)


class WireCapture:
    """Records AMQP messages on lo:5672 on a thread of its own, until stop()."""

    def __init__(self, device: str = "lo") -> None:
        self.device = device
        self.messages: list[WireMessage] = []
        self.packets = 0
        self.kernel_drops = 0
        self._streams: dict[tuple[int, int, int, int], _Stream] = {}
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        attach_filter(self._sock, _FILTER)
        self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 * 1024 * 1024)
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock.bind((device, ETH_P_ALL))
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._run, name="wire-capture", daemon=True)

    def start(self) -> "WireCapture":
        self._thread.start()
        return self

    def stop(self) -> None:
        time.sleep(0.2)  # the last packets in flight
        self._stop.set()
        self._thread.join(5)
        stats = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        _packets, drops = struct.unpack("II", stats)
        self.kernel_drops += drops
        self._sock.close()

    def _run(self) -> None:
        sock = self._sock
        while not self._stop.is_set():
            try:
                data, ancillary, _flags, address = sock.recvmsg(1 << 17, STAMP_SPACE)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] != PACKET_HOST:
                continue  # loopback shows each packet going out too
            stamp = kernel_stamp_ns(ancillary) or time.time_ns()
            self.packets += 1
            self._packet(data, stamp)

    def _packet(self, data: bytes, stamp: int) -> None:
        ip = 14
        header = (data[ip] & 0x0F) * 4
        total = struct.unpack_from(">H", data, ip + 2)[0]
        tcp = ip + header
        source, target = struct.unpack_from(">HH", data, tcp)
        offset = (data[tcp + 12] >> 4) * 4
        payload = data[tcp + offset : ip + total]
        if not payload:
            return
        addresses = struct.unpack_from(">II", data, ip + 12)
        key = (addresses[0], source, addresses[1], target)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream()
            # Only from its first byte: a protocol header (client) or Connection.Start.
            stream.started = payload.startswith(b"AMQP") or payload[7:11] == b"\x00\x0a\x00\x0a"
        if not stream.started:
            return
        stream.buffer += payload
        self._frames(stream, stamp, from_client=target == AMQP_PORT)

    def _frames(self, stream: _Stream, stamp: int, from_client: bool) -> None:
        buffer = stream.buffer
        if from_client and buffer.startswith(b"AMQP"):
            del buffer[:8]
        position = 0
        while len(buffer) - position >= 8:
            kind, _channel, size = struct.unpack_from(">BHI", buffer, position)
            end = position + 7 + size
            if end >= len(buffer):
                break
            payload = bytes(buffer[position + 7 : end])
            position = end + 1
            if kind == 1:
                stream.method = _message_method(payload)
            elif kind == 2 and stream.method is not None:
                stream.size = struct.unpack_from(">Q", payload, 4)[0]
                stream.parts = []
                if stream.size == 0:
                    self._record(stream, stamp)
            elif kind == 3 and stream.method is not None:
                stream.parts.append(payload)
                if sum(len(part) for part in stream.parts) >= stream.size:
                    self._record(stream, stamp)
        del buffer[:position]

    def _record(self, stream: _Stream, stamp: int) -> None:
        assert stream.method is not None
        kind, exchange, routing_key = stream.method
        body = b"".join(stream.parts)
        self.messages.append(WireMessage(stamp, kind, exchange, routing_key, body))
        stream.method = None
        stream.parts = []


def _message_method(payload: bytes) -> tuple[str, bytes, bytes] | None:
    """(kind, exchange, routing key) of a Basic.Publish or Basic.Deliver, else None."""
    class_id, method_id = struct.unpack_from(">HH", payload, 0)
    if (class_id, method_id) == (60, 40):  # Basic.Publish: reserved, exchange, routing key
        exchange, offset = _shortstr(payload, 6)
        routing_key, _ = _shortstr(payload, offset)
        return "publish", exchange, routing_key
    if (class_id, method_id) == (60, 60):  # Basic.Deliver: tag, delivery tag, redelivered
        _tag, offset = _shortstr(payload, 4)
        exchange, offset = _shortstr(payload, offset + 9)
        routing_key, _ = _shortstr(payload, offset)
        kind = "trace" if exchange == TRACE_EXCHANGE else "deliver"
        return kind, exchange, routing_key
    return None


def _shortstr(data: bytes, offset: int) -> tuple[bytes, int]:
    length = data[offset]
    return data[offset + 1 : offset + 1 + length], offset + 1 + length


# --- the split --------------------------------------------------------------------


@dataclass
class Split:
    """Errors per traced event (ms): the broker's and the tap's, and per flow."""

    broker_ms: list[float] = field(default_factory=list)
    tap_ms: list[float] = field(default_factory=list)
    latency_error_ms: list[float] = field(default_factory=list)  # Warren − wire, per flow
    flow_broker_ms: list[float] = field(default_factory=list)
    flow_tap_ms: list[float] = field(default_factory=list)
    # Flows Warren measured as 0 whose trace messages came >= 0.05 ms apart on
    # the wire (the tap's doing); and whose trace messages came together though
    # the calls took >= 0.05 ms (the broker's: it sent both in one segment).
    zero_but_not_on_wire: int = 0
    zero_from_the_broker: int = 0
    unmatched: int = 0


def split(
    wire: Iterable[WireMessage],
    stamps: dict[tuple[str, bytes], int],
    calls: Iterable[tuple[bytes, bytes]],
) -> Split:
    """`stamps`: Warren's captured_at (µs) by (event, body) for publishes;
    `calls`: (request body, reply body) of each call."""
    client_publish: dict[bytes, int] = {}
    traced_publish: dict[bytes, int] = {}
    for message in wire:
        if message.kind == "publish":
            client_publish.setdefault(message.body, message.at_ns)
        elif message.kind == "trace" and message.routing_key.startswith(b"publish."):
            traced_publish.setdefault(message.body, message.at_ns)
    result = Split()
    for body, wire_ns in traced_publish.items():
        stamp = stamps.get(("publish", body))
        if stamp is None or body not in client_publish:
            continue
        result.broker_ms.append((wire_ns - client_publish[body]) / 1e6)
        result.tap_ms.append((stamp * 1000 - wire_ns) / 1e6)
    for request, reply in calls:
        ends = (request, reply)
        if any(body not in client_publish or body not in traced_publish for body in ends) or any(
            ("publish", body) not in stamps for body in ends
        ):
            result.unmatched += 1
            continue
        wire_ms = (client_publish[reply] - client_publish[request]) / 1e6
        traced_ms = (traced_publish[reply] - traced_publish[request]) / 1e6
        warren_ms = (stamps[("publish", reply)] - stamps[("publish", request)]) / 1e3
        result.latency_error_ms.append(warren_ms - wire_ms)
        result.flow_broker_ms.append(traced_ms - wire_ms)
        result.flow_tap_ms.append(warren_ms - traced_ms)
        if warren_ms == 0 and traced_ms >= 0.05:
            result.zero_but_not_on_wire += 1
        elif warren_ms == 0 and wire_ms >= 0.05:
            result.zero_from_the_broker += 1
    return result
