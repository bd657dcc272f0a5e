"""A minimal AMQP 0-9-1 consumer over a plain socket: the tap's hot path only.

Why a second AMQP module beside rabbit/amqp.py: profiling the tap showed
pika's BlockingConnection spending about 60 µs of Python per trace message
(frame objects, a BasicProperties object, its generic table decoder, callback
dispatch), a wall near 16,000 events/s on one core before anything is stored.
The tap needs one small part of the protocol — open a channel, set a prefetch,
consume one queue, ack — so this module speaks just that, parses frames straight
out of the socket buffer and decodes the header table with a decoder that
yields the same Python values as pika's (long strings as text when they are
UTF-8, `x` as bytes, `T` as an aware datetime, `D` as a Decimal; floats stay
floats). Declarations, purges and everything else still go through pika in
rabbit/amqp.py. Nothing but tracer/tap/reader.py uses this module, and it uses
no client library at all.
"""

import contextlib
import select
import socket
import ssl
import struct
import threading
import time
from typing import NoReturn, Self
from urllib.parse import unquote, urlsplit

from rabbit.arrival import STAMP_SPACE, ask_for_kernel_stamps, kernel_stamp_ns
from rabbit.delivery import Delivery
from rabbit.field_tables import (
    AMQPRawError,
    HandshakeTable,
    encode_longstr,
    encode_shortstr,
    encode_table,
    read_shortstr,
)
from rabbit.frames import FRAME_END, FRAME_HEARTBEAT, FRAME_METHOD, DeliveryParser
from rabbit.packet_stamps import PacketStamps, PacketStampsRefused
from rabbit.tls import DEFAULT_TLS_PORT, TlsError, TlsSession, client_context, uses_tls

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
CHANNEL = 1
FRAME_MAX = 131072
READ_SIZE = 1 << 18
PEEK_SIZE = 1 << 18  # read_each() looks this far ahead for whole messages
BEHIND_BYTES = 1 << 16  # this much waiting: read_each() takes it in one read

_FRAME = struct.Struct(">BHI")
_METHOD = struct.Struct(">HH")
_U16 = struct.Struct(">H").unpack_from


class ConsumerCancelled(AMQPRawError):
    """The broker cancelled the consumer (its queue was deleted)."""


# --- the connection -------------------------------------------------------------


class TraceConsumer:
    """One connection, one channel, one consumer; acks may come from another thread."""

    def __init__(
        self,
        url: str,
        vhost: str | None = None,
        name: str | None = None,
        heartbeat: int = 30,
        connect_timeout: float = 5.0,
        tls_context: ssl.SSLContext | None = None,
        decode_headers: bool = True,
        packet_stamps: bool = False,
    ) -> None:
        # False: deliveries keep their encoded properties (`raw`) only, `headers`
        # None: capture makes them durable undecoded (benchmarks/capture.py).
        self.decode_headers = decode_headers
        # Stamp deliveries from a packet socket (rabbit/packet_stamps.py) where
        # allowed, so that read_gathered() can read in bulk; why not, if refused.
        self.want_packet_stamps = packet_stamps
        self.packet_stamps: PacketStamps | None = None
        self.packet_stamps_refused = "" if packet_stamps else "not asked for"
        self._received_bytes = 0  # of the stream, decrypted: offsets for packet stamps
        parts = urlsplit(url)
        self.use_tls = uses_tls(url)
        self._tls_context = tls_context
        self._tls: TlsSession | None = None
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (DEFAULT_TLS_PORT if self.use_tls else 5672)
        self.username = unquote(parts.username or "guest")
        self.password = unquote(parts.password or "guest")
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        self.vhost = vhost if vhost is not None else (unquote(path) if path else "/")
        self.name = name
        self.heartbeat = heartbeat
        self.connect_timeout = connect_timeout
        self.consumer_tag: bytes | None = None
        self.frame_max = FRAME_MAX
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._leftover = b""  # the handshake's; then the parser's
        self._parser = DeliveryParser(decode_headers, self._other_method)
        self._last_sent = 0.0
        self._last_received = 0.0
        self.is_open = False
        self.cancel_ok = False
        self.prefetch = 0
        self.acks_confirmed = 0  # Qos-Ok answers to ack(confirm=True), counted by the reader
        # Deliveries read_each took one message a read, and in one read while far behind.
        self.read_alone = 0
        self.read_in_chunks = 0
        # Deliveries read_gathered stamped from their packets, and from the read
        # (their packet's copy not there).
        self.stamped_by_packet = 0
        self.stamped_by_read = 0
        self.received_us = 0
        self.kernel_stamps = False
        self._scratch = memoryview(bytearray(PEEK_SIZE))
        # Looked into again and again: recv(PEEK_SIZE) would allocate (and shrink)
        # a quarter-megabyte object per look, a fifth of capture's time (py-spy).
        self._peek_space = bytearray(PEEK_SIZE)
        self._peek_view = memoryview(self._peek_space)

    def _socket(self) -> socket.socket:
        """The socket, which only a connected consumer reads, writes or polls."""
        sock = self._sock
        assert sock is not None, "the consumer is not connected"
        return sock

    # --- sending ---

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            try:
                self._socket().sendall(self._tls.encrypt(data) if self._tls else data)
            except OSError as error:
                raise AMQPRawError(f"cannot send to the broker: {error}") from error
            self._last_sent = time.monotonic()

    def _plain(self, data: bytes) -> bytes:
        """What came off the socket, decrypted under TLS (maybe nothing yet)."""
        if self._tls is None:
            return data
        try:
            plain, reply = self._tls.decrypt(data)
        except TlsError as error:
            self.is_open = False
            raise AMQPRawError(str(error)) from error
        if reply:  # a TLS session may need to answer (a key update, an alert)
            with self._send_lock:
                try:
                    self._socket().sendall(reply)
                except OSError as error:
                    raise AMQPRawError(f"cannot send to the broker: {error}") from error
        return plain

    @staticmethod
    def _frame(kind: int, channel: int, payload: bytes) -> bytes:
        return _FRAME.pack(kind, channel, len(payload)) + payload + b"\xce"

    def _method(self, channel: int, class_id: int, method_id: int, args: bytes = b"") -> None:
        self._send(self._frame(FRAME_METHOD, channel, _METHOD.pack(class_id, method_id) + args))

    # --- receiving during the handshake ---

    def _read_frame(self, deadline: float) -> tuple[int, int, bytes]:
        while True:
            data = self._leftover
            if len(data) >= 7:
                kind, channel, size = _FRAME.unpack_from(data, 0)
                end = 7 + size
                if len(data) > end:
                    if data[end] != FRAME_END:
                        raise AMQPRawError("bad frame end from the broker")
                    self._leftover = data[end + 1 :]
                    return kind, channel, data[7:end]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AMQPRawError("the broker did not answer in time")
            sock = self._socket()
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(READ_SIZE)
            except OSError as error:
                raise AMQPRawError(f"cannot read from the broker: {error}") from error
            if not chunk:
                raise AMQPRawError("the broker closed the connection")
            self._received_bytes += len(chunk)
            self._leftover += self._plain(chunk)

    def _expect(self, class_id: int, method_id: int, timeout: float = 10.0) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            kind, channel, payload = self._read_frame(deadline)
            if kind != FRAME_METHOD:
                continue
            got = _METHOD.unpack_from(payload, 0)
            if got == (class_id, method_id):
                return payload[4:]
            self._closed_by_broker(channel, got, payload[4:])

    def _closed_by_broker(self, channel: int, method: tuple[int, int], args: bytes) -> NoReturn:
        if method in ((10, 50), (20, 40)):
            code = _U16(args, 0)[0]
            text, _ = read_shortstr(args, 2)
            if method == (10, 50):
                self._method(0, 10, 51)
            else:
                self._method(channel, 20, 41)
            self.is_open = False
            reason = text.decode("utf-8", "replace")
            what = "connection" if method == (10, 50) else "channel"
            raise AMQPRawError(f"the broker closed the {what}: {code} {reason}")
        raise AMQPRawError(f"unexpected method {method} from the broker")

    # --- opening ---

    def _open_socket(self) -> socket.socket:
        """A TCP connection to the broker; with a packet socket watching it when
        asked for and allowed (it must see the connection's first packet)."""
        if not self.want_packet_stamps or self.use_tls:
            if self.use_tls:
                self.packet_stamps_refused = "TLS records hide where messages end"
            return socket.create_connection((self.host, self.port), self.connect_timeout)
        error: OSError = OSError(f"no address for {self.host}")
        for family, kind, protocol, _name, address in socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, protocol)
            stamps = None
            try:
                sock.settimeout(self.connect_timeout)
                sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))  # noqa: S104 - an outgoing connection's own port
                try:
                    stamps = PacketStamps.open_for(sock, self.port)
                except PacketStampsRefused as refused:
                    self.packet_stamps_refused = str(refused)
                sock.connect(address)
            except OSError as failed:
                if stamps is not None:
                    stamps.close()
                sock.close()
                error = failed
                continue
            self.packet_stamps = stamps
            return sock
        raise error

    def connect(self) -> Self:
        try:
            self._sock = self._open_socket()
        except OSError as error:
            raise AMQPRawError(f"cannot connect to {self.host}:{self.port}: {error}") from error
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.kernel_stamps = ask_for_kernel_stamps(self._sock)
        if self.use_tls:
            try:
                self._tls = TlsSession(self._tls_context or client_context(), self.host)
                self._tls.handshake(self._sock, self.connect_timeout)
            except (TlsError, ssl.SSLError, OSError) as error:
                self.close()
                raise AMQPRawError(f"TLS to {self.host}:{self.port}: {error}") from error
        self._send(PROTOCOL_HEADER)
        self._expect(10, 10)  # Connection.Start
        client_properties: HandshakeTable = {
            "product": "Warren",
            "capabilities": {
                "consumer_cancel_notify": True,
                "basic.nack": True,
                "connection.blocked": True,
                "authentication_failure_close": True,
            },
        }
        if self.name:
            client_properties["connection_name"] = self.name
        response = b"\x00" + self.username.encode() + b"\x00" + self.password.encode()
        self._method(
            0,
            10,
            11,
            encode_table(client_properties)
            + encode_shortstr("PLAIN")
            + encode_longstr(response)
            + encode_shortstr("en_US"),
        )
        tune = self._expect(10, 30)
        channel_max, frame_max, heartbeat = struct.unpack_from(">HIH", tune, 0)
        self.frame_max = min(frame_max or FRAME_MAX, FRAME_MAX)
        if heartbeat and self.heartbeat:
            self.heartbeat = min(heartbeat, self.heartbeat)
        elif not self.heartbeat:
            self.heartbeat = 0
        self._method(
            0, 10, 31, struct.pack(">HIH", channel_max or 1, self.frame_max, self.heartbeat)
        )
        self._method(0, 10, 40, encode_shortstr(self.vhost) + b"\x00\x00")
        self._expect(10, 41)
        self._method(CHANNEL, 20, 10, b"\x00")
        self._expect(20, 11)
        self._last_received = time.monotonic()
        self.is_open = True
        return self

    def consume(self, queue: str, prefetch: int) -> None:
        self.prefetch = min(prefetch, 65535)
        self._method(CHANNEL, 60, 10, struct.pack(">IHB", 0, self.prefetch, 0))
        self._expect(60, 11)
        self._method(
            CHANNEL,
            60,
            20,
            struct.pack(">H", 0)
            + encode_shortstr(queue)
            + encode_shortstr("")
            + b"\x00"
            + encode_table({}),
        )
        answer = self._expect(60, 21)
        self.consumer_tag = read_shortstr(answer, 0)[0]
        # The parser starts where the handshake stopped: at what is left over.
        self._parser.stream_offset = self._received_bytes - len(self._leftover)

    # --- the hot path ---

    def fileno(self) -> int:
        return self._socket().fileno()

    def take_buffered(self) -> list[Delivery]:
        """Deliveries already read with the consume's answer (they came in one packet)."""
        data, self._leftover = self._leftover, b""
        return self._parser.parse(data) if data else []

    def poll(self, timeout: float) -> list[Delivery]:
        """Deliveries that arrived within `timeout` seconds (maybe none)."""
        buffered = self.take_buffered()
        if buffered:
            return buffered
        ready, _, _ = select.select([self._socket()], [], [], timeout)
        if not ready:
            self.idle()
            return []
        return self.read()

    def idle(self) -> None:
        """Nothing to read: send a heartbeat when due, and notice a silent broker."""
        self._heartbeat()
        if self.heartbeat and time.monotonic() - self._last_received > 2 * self.heartbeat:
            self.is_open = False
            raise AMQPRawError("the broker sent nothing for two heartbeats")

    def keep_alive(self) -> None:
        """Not reading for a while (the caller holds back): heartbeats still go out."""
        self._heartbeat()
        self._last_received = time.monotonic()  # what the broker sent waits unread

    def read(self) -> list[Delivery]:
        """Whatever the socket holds now (call when it is readable), as deliveries."""
        self._heartbeat()
        stamp_ns = None
        try:
            sock = self._socket()
            sock.settimeout(0)
            if self.kernel_stamps:
                chunk, ancillary, _flags, _address = sock.recvmsg(READ_SIZE, STAMP_SPACE)
                stamp_ns = kernel_stamp_ns(ancillary)
            else:
                chunk = sock.recv(READ_SIZE)
        except BlockingIOError:
            return []
        except OSError as error:
            self.is_open = False
            raise AMQPRawError(f"cannot read from the broker: {error}") from error
        if not chunk:
            self.is_open = False
            raise AMQPRawError("the broker closed the connection")
        # When these bytes arrived (µs since the epoch): the kernel's stamp (of the
        # last packet read) when it gave one, else now, before parsing, which can
        # take a while for a full buffer. Never later than now.
        read_ns = time.time_ns()
        if stamp_ns is None or stamp_ns > read_ns:
            stamp_ns = read_ns
        self.received_us = stamp_ns // 1000
        self._received_bytes += len(chunk)
        self._last_received = time.monotonic()
        if self._tls is not None:
            chunk = self._plain(chunk)
            if not chunk:
                return []  # a TLS record not yet whole
        return self._parser.parse(chunk)

    def read_each(self, floor_ns: int = 0) -> list[Delivery]:
        """Whatever the socket holds now, read one message at a time: each
        delivery's `arrived_us` is the kernel's stamp of the packet that brought
        its own last bytes, not of a later one.

        A read returns the stamp of the last packet it took, so one big read
        gives every message in it the time the last one came. Here a look at
        what waits (MSG_PEEK) finds where each whole message ends, and each is
        then taken with a read that stops exactly there: one extra system call
        for the lot, one per message. A message still arriving is left in the
        socket until it is whole. Under TLS (records, not packets) or without
        kernel stamps, every delivery of a read shares its stamp (read()).

        What remains: a packet that waits unread in the socket may be merged
        by the kernel with the next one (TCP coalescing), and the merged bytes
        carry the later stamp. `floor_ns`: the earliest its bytes can have
        arrived (the caller knows: when it last found the socket empty, or when
        its wait for data ended); `stamp_error_us` is the stamp's distance from
        it, how late the stamp may be (0 when the stamp is not after it).
        """
        if self._tls is not None or not self.kernel_stamps:
            deliveries = self.read()
            for delivery in deliveries:
                delivery.arrived_us = self.received_us
            return deliveries
        self._heartbeat()
        sock = self._socket()
        sock.settimeout(0)
        try:
            size = sock.recv_into(self._peek_space, PEEK_SIZE, socket.MSG_PEEK)
        except BlockingIOError:
            return []
        except OSError as error:
            self.is_open = False
            raise AMQPRawError(f"cannot read from the broker: {error}") from error
        if not size:
            self.is_open = False
            raise AMQPRawError("the broker closed the connection")
        peeked = bytes(self._peek_view[:size])  # what is parsed must outlive the next look
        ends = self._parser.message_ends(peeked)
        at_once = len(peeked) >= BEHIND_BYTES
        if at_once:
            # Far behind: what waits came in many packets, which the kernel may
            # have merged (and their stamps); reading it one message at a time
            # would only cost time when it is most needed. One read, one stamp,
            # its possible error said (stamp_error_us).
            ends = ends[-1:]
        stamps: list[tuple[int, int]] = []  # (µs, error µs) of each delivery completed
        taken = 0  # of `peeked`
        scratch = self._scratch
        for end, delivers in ends:
            want = end - taken
            try:
                got, ancillary, _flags, _address = sock.recvmsg_into([scratch[:want]], STAMP_SPACE)
            except BlockingIOError:
                break
            except OSError as error:
                self.is_open = False
                raise AMQPRawError(f"cannot read from the broker: {error}") from error
            if not got:
                self.is_open = False
                raise AMQPRawError("the broker closed the connection")
            read_ns = time.time_ns()
            stamp_ns = kernel_stamp_ns(ancillary)
            if stamp_ns is None or stamp_ns > read_ns:
                stamp_ns = read_ns
            taken += got
            if got < want:
                break  # fewer bytes than looked at: the rest next time
            stamp = (stamp_ns // 1000, max(0, stamp_ns - floor_ns) // 1000 if floor_ns else 0)
            if delivers or at_once:
                stamps.append(stamp)
        if not taken:
            return []
        self._received_bytes += taken
        self._last_received = time.monotonic()
        # Parsed once for all the reads above: the bytes are the same.
        deliveries = self._parser.parse(peeked[:taken])
        if at_once:
            self.read_in_chunks += len(deliveries)
        else:
            self.read_alone += len(deliveries)
        last = stamps[-1] if stamps else (time.time_ns() // 1000, 0)
        for index, delivery in enumerate(deliveries):
            delivery.arrived_us, delivery.stamp_error_us = (
                last if at_once or index >= len(stamps) else stamps[index]
            )
        self.received_us = last[0]
        return deliveries

    def read_gathered(self, floor_ns: int = 0) -> list[Delivery]:
        """Whatever the socket holds now, in one read, each delivery stamped with
        the arrival of the packet that brought its own last byte (from the packet
        socket: rabbit/packet_stamps.py), however long the bytes waited.

        So the caller may let packets gather and read them in bulk: a wake-up
        per packet is what read_each() needs, and costs. A delivery whose packet
        the packet socket did not give (its buffer overflowed) takes the read's
        stamp, and how late that may be (`stamp_error_us`, from `floor_ns` as in
        read_each()). Without packet stamps: read_each().
        """
        stamps = self.packet_stamps
        if stamps is None:
            return self.read_each(floor_ns)
        deliveries = self.read()
        if not deliveries:
            return deliveries
        read_us = self.received_us
        error_us = max(0, read_us - floor_ns // 1000) if floor_ns else 0
        for delivery, end in zip(deliveries, self._parser.delivery_ends, strict=True):
            stamp_ns = stamps.stamp_at(end)
            if stamp_ns is None or stamp_ns // 1000 > read_us:
                delivery.arrived_us, delivery.stamp_error_us = read_us, error_us
                self.stamped_by_read += 1
            else:
                delivery.arrived_us = stamp_ns // 1000
                self.stamped_by_packet += 1
        return deliveries

    def _other_method(self, channel: int, payload: bytes) -> None:
        method = _METHOD.unpack_from(payload, 0)
        if method == (60, 30):  # Basic.Cancel from the broker
            self.is_open = False
            raise ConsumerCancelled("the broker cancelled the tap's consumer")
        if method == (60, 31):  # Cancel-Ok: nothing more will be delivered
            self.cancel_ok = True
            return
        if method == (60, 11):  # Qos-Ok: the channel has handled every ack sent before
            self.acks_confirmed += 1
            return
        if method in ((10, 60), (10, 61)):  # blocked, unblocked
            return
        self._closed_by_broker(channel, method, payload[4:])

    def _heartbeat(self) -> None:
        if self.heartbeat and time.monotonic() - self._last_sent > self.heartbeat / 2:
            self._send(self._frame(FRAME_HEARTBEAT, 0, b""))

    def ack(self, tag: int, multiple: bool = True, confirm: bool = False) -> None:
        """Thread-safe: the writer acks after its commit.

        AMQP never answers an ack, and acks still in the socket when the
        connection dies (a kill, the broker's 541) are lost: the broker delivers
        those messages again. With `confirm`, a Basic.Qos repeating the consume's
        prefetch (no change for the running consumer) follows the ack in the same
        write; the channel handles its frames in order, so its Qos-Ok, counted in
        `acks_confirmed` by whoever reads, proves the ack was taken.
        """
        frames = self._frame(
            FRAME_METHOD, CHANNEL, _METHOD.pack(60, 80) + struct.pack(">QB", tag, int(multiple))
        )
        if confirm:
            frames += self._frame(
                FRAME_METHOD,
                CHANNEL,
                _METHOD.pack(60, 10) + struct.pack(">IHB", 0, self.prefetch, 0),
            )
        self._send(frames)

    def cancel(self) -> None:
        if self.consumer_tag is not None and self.is_open:
            self._method(CHANNEL, 60, 30, encode_shortstr(self.consumer_tag) + b"\x01")
            self.consumer_tag = None

    def close(self) -> None:
        if self.packet_stamps is not None:
            self.packet_stamps.close()
            self.packet_stamps = None
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self.is_open:
            self.is_open = False
            try:
                bye = self._frame(
                    FRAME_METHOD,
                    0,
                    _METHOD.pack(10, 50)
                    + struct.pack(">H", 200)
                    + encode_shortstr("bye")
                    + b"\x00\x00\x00\x00",
                )
                with self._send_lock:
                    sock.sendall(self._tls.encrypt(bye) if self._tls else bye)
                sock.settimeout(1.0)
                sock.recv(4096)  # Close-Ok, or whatever was in flight
            except OSError:
                pass
        with contextlib.suppress(OSError):
            sock.close()
