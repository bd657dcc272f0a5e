"""The AMQP 0-9-1 connection under the tap's raw consumer (rabbit/raw.py):
a socket (plain, or TLS through rabbit/tls.py), framing, the handshake with
its PLAIN login, one channel, heartbeats and the closing handshake.

Its socket is opened with a packet socket watching it when asked for and
allowed (rabbit/packet_stamps.py): the packet socket must see the
connection's first packet, the broker's SYN-ACK, to place later ones in the
stream. Reading deliveries is the consumer's (rabbit/raw.py).
"""

import contextlib
import socket
import ssl
import struct
import threading
import time
from typing import NoReturn, Self, TypedDict
from urllib.parse import unquote, urlsplit

from rabbit.arrival import ask_for_kernel_stamps
from rabbit.field_tables import (
    AMQPRawError,
    HandshakeTable,
    encode_longstr,
    encode_shortstr,
    encode_table,
    read_shortstr,
)
from rabbit.frames import FRAME_END, FRAME_HEARTBEAT, FRAME_METHOD
from rabbit.packet_stamps import PacketStamps, PacketStampsRefused
from rabbit.tls import DEFAULT_TLS_PORT, TlsError, TlsSession, client_context, uses_tls

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
CHANNEL = 1
FRAME_MAX = 131072
READ_SIZE = 1 << 18

FRAME = struct.Struct(">BHI")
METHOD = struct.Struct(">HH")
_U16 = struct.Struct(">H").unpack_from


class ConnectionOptions(TypedDict, total=False):
    """RawConnection's keyword arguments, for classes built on it to pass on."""

    vhost: str | None
    name: str | None
    heartbeat: int
    connect_timeout: float
    tls_context: ssl.SSLContext | None
    packet_stamps: bool


class RawConnection:
    """One connection and its one channel; sends may come from several threads."""

    def __init__(
        self,
        url: str,
        vhost: str | None = None,
        name: str | None = None,
        heartbeat: int = 30,
        connect_timeout: float = 5.0,
        tls_context: ssl.SSLContext | None = None,
        packet_stamps: bool = False,
    ) -> None:
        # Watch the connection with a packet socket (rabbit/packet_stamps.py)
        # where allowed; why not, if refused.
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
        self.frame_max = FRAME_MAX
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._leftover = b""  # what the handshake read past its last frame
        self._last_sent = 0.0
        self._last_received = 0.0
        self.is_open = False
        self.kernel_stamps = False

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
        return FRAME.pack(kind, channel, len(payload)) + payload + b"\xce"

    def _method(self, channel: int, class_id: int, method_id: int, args: bytes = b"") -> None:
        self._send(self._frame(FRAME_METHOD, channel, METHOD.pack(class_id, method_id) + args))

    # --- receiving during the handshake ---

    def _read_frame(self, deadline: float) -> tuple[int, int, bytes]:
        while True:
            data = self._leftover
            if len(data) >= 7:
                kind, channel, size = FRAME.unpack_from(data, 0)
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
            got = METHOD.unpack_from(payload, 0)
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

    def fileno(self) -> int:
        return self._socket().fileno()

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

    def _heartbeat(self) -> None:
        if self.heartbeat and time.monotonic() - self._last_sent > self.heartbeat / 2:
            self._send(self._frame(FRAME_HEARTBEAT, 0, b""))

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
                    METHOD.pack(10, 50)
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
