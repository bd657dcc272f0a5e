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
rabbit/amqp.py. Only the tap (tracer/tap/) and its benchmarks use this module,
and it uses no client library at all; the connection under the consumer
(socket, TLS, handshake, heartbeats) is rabbit/raw_connection.py.
"""

import select
import socket
import struct
import time
from typing import Unpack

from rabbit.arrival import STAMP_SPACE, kernel_stamp_ns
from rabbit.delivery import Delivery
from rabbit.field_tables import AMQPRawError, encode_shortstr, encode_table, read_shortstr
from rabbit.frames import FRAME_METHOD, DeliveryParser
from rabbit.raw_connection import CHANNEL, METHOD, READ_SIZE, ConnectionOptions, RawConnection

__all__ = ["AMQPRawError", "ConsumerCancelled", "TraceConsumer"]

PEEK_SIZE = 1 << 18  # read_each() looks this far ahead for whole messages
BEHIND_BYTES = 1 << 16  # this much waiting: read_each() takes it in one read


class ConsumerCancelled(AMQPRawError):
    """The broker cancelled the consumer (its queue was deleted)."""


class TraceConsumer(RawConnection):
    """One connection, one channel, one consumer; acks may come from another thread."""

    def __init__(
        self, url: str, *, decode_headers: bool = True, **options: Unpack[ConnectionOptions]
    ) -> None:
        super().__init__(url, **options)
        # False: deliveries keep their encoded properties (`raw`) only, `headers`
        # None: capture makes them durable undecoded (benchmarks/capture.py).
        self.decode_headers = decode_headers
        self.consumer_tag: bytes | None = None
        self._parser = DeliveryParser(decode_headers, self._other_method)
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
        self._scratch = memoryview(bytearray(PEEK_SIZE))
        # Looked into again and again: recv(PEEK_SIZE) would allocate (and shrink)
        # a quarter-megabyte object per look, a fifth of capture's time (py-spy).
        self._peek_space = bytearray(PEEK_SIZE)
        self._peek_view = memoryview(self._peek_space)

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

    def take_buffered(self) -> list[Delivery]:
        """Deliveries already read with the consume's answer (they came in one packet)."""
        data, self._leftover = self._leftover, b""
        return self._parser.parse(data) if data else []

    @property
    def last_delivery_tag(self) -> int:
        """The newest delivery tag the broker sent that was read, whole or not,
        handed on or not (the connection closed in the same read)."""
        return self._parser.last_tag

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
        method = METHOD.unpack_from(payload, 0)
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
            FRAME_METHOD, CHANNEL, METHOD.pack(60, 80) + struct.pack(">QB", tag, int(multiple))
        )
        if confirm:
            frames += self._frame(
                FRAME_METHOD,
                CHANNEL,
                METHOD.pack(60, 10) + struct.pack(">IHB", 0, self.prefetch, 0),
            )
        self._send(frames)

    def cancel(self) -> None:
        if self.consumer_tag is not None and self.is_open:
            self._method(CHANNEL, 60, 30, encode_shortstr(self.consumer_tag) + b"\x01")
            self.consumer_tag = None
