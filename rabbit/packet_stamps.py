"""When each of a TCP connection's incoming bytes arrived, from a packet socket.

A socket's own receive stamps (SO_TIMESTAMPNS, rabbit/arrival.py) are only
true when every packet is read before the next one comes: packets left waiting
in a TCP socket are merged by the kernel, and the merged bytes carry the last
packet's stamp. So a reader that wants each message's own arrival time must
wake for every packet, and that wake-up (a system call, a context switch,
Python's dispatch) is what the tap's capture spent most of its time on under
load (`manage.py bench overhead` prints capture's CPU a call).

A packet socket (AF_PACKET) keeps each packet apart, with the kernel's stamp
taken as it arrived, and is handed its copy before TCP sees the packet. One
filtered in the kernel to a single connection's incoming segments (a classic
BPF program on the two ports; only the IP and TCP headers are copied) lets
the reader sleep, read the TCP stream in bulk, and still stamp each message
with the arrival of the packet that carried its last byte: the packet whose
sequence numbers cover that byte's offset in the stream.

The copies are taken from a ring the kernel writes into and this process
reads in place (PACKET_RX_RING, TPACKET_V2: a frame a packet, its stamp in its
header): reading each copy with a system call of its own (recvmsg) was a
third of capture's reading thread under load (py-spy, `bench keep-up`), as
system calls cost tens of microseconds on a virtual machine. Where the ring
cannot be had, copies are read with recvmsg. The ring is used on x86-64 only,
whose memory order makes the kernel's writes to a frame visible before the
status word that hands it over; a weaker order would need a read barrier,
which Python cannot issue.

Linux only, and only with CAP_NET_RAW (root): `open_for` raises
PacketStampsRefused otherwise, and the reader falls back to waking per packet.
Not under TLS (its records hide where a message ends in the TCP stream).

Why by hand: no packet-capture library is among this project's dependencies,
and this needs a filter, a stamp and three header fields, nothing more.
"""

import contextlib
import ctypes
import mmap
import platform
import socket
import struct
import sys
import time
from collections import deque
from typing import Final

from rabbit.arrival import SO_TIMESTAMPNS, STAMP_SPACE, kernel_stamp_ns

ETH_P_ALL: Final = 0x0003
PACKET_HOST: Final = 0  # addressed to this host (a packet going out is PACKET_OUTGOING)
SOL_PACKET: Final = 263
PACKET_STATISTICS: Final = 6
PACKET_RX_RING: Final = 5
PACKET_VERSION: Final = 10
PACKET_IGNORE_OUTGOING: Final = 23  # Linux 4.20 on
TPACKET_V2: Final = 1
TP_STATUS_USER: Final = 1  # a frame the kernel has filled and handed over
SO_ATTACH_FILTER: Final = 26
SO_RCVBUFFORCE: Final = 33
SKF_AD_PKTTYPE: Final = 0xFFFFF004  # BPF's ancillary load of the packet's type (SKF_AD_OFF + 4)
SNAP_BYTES: Final = 120  # the longest IPv4 header (60) and TCP header (60)
RECEIVE_BUFFER: Final = 16 * 1024 * 1024  # about 20,000 packets' copies between two reads
# The ring: a frame holds the frame header (32 bytes), the packet's address (20),
# the kernel's padding to 80, and SNAP_BYTES. 16,384 frames (4 MiB of kernel
# memory a connection) between two reads, as many packets as the receive buffer.
RING_FRAME: Final = 256
RING_BLOCK: Final = 64 * 1024  # whole pages, a whole number of frames
RING_BLOCKS: Final = 64
RING_ARCHITECTURES: Final = frozenset({"x86_64", "amd64"})
# struct tpacket2_hdr: status, len, snaplen, mac, net, sec, nsec.
_FRAME_HEADER = struct.Struct("=IIIHHII").unpack_from
_KERNEL_OWNS = bytes(4)  # TP_STATUS_KERNEL: the frame goes back to the kernel
_SYN: Final = 0x02
_U16 = struct.Struct(">H").unpack_from
_U32 = struct.Struct(">I").unpack_from


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def attach_filter(sock: socket.socket, program: tuple[tuple[int, int, int, int], ...]) -> None:
    """Attach a classic BPF program ((code, jt, jf, k), …) to a socket."""
    instructions = (_SockFilter * len(program))(*[_SockFilter(*op) for op in program])
    fprog = _SockFprog(len(program), instructions)
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(fprog))  # the kernel copies it


def connection_filter(remote_port: int, local_port: int) -> tuple[tuple[int, int, int, int], ...]:
    """Classic BPF over a packet from its network header (SOCK_DGRAM): coming in
    (loopback shows each packet going out too), IPv4 or IPv6, TCP, not a
    fragment, from `remote_port` to `local_port`; the headers only kept."""
    return (
        (0x20, 0, 0, SKF_AD_PKTTYPE),  # 0 ld pkttype
        (0x15, 0, 20, PACKET_HOST),  # 1 coming in, else reject (22)
        (0x30, 0, 0, 0),  # 2 ldb [0]: version and header length
        (0x54, 0, 0, 0xF0),  # 3 and #0xf0
        (0x15, 0, 9, 0x40),  # 4 IPv4, else to 14
        (0x30, 0, 0, 9),  # 5 ldb [9]: protocol
        (0x15, 0, 15, 6),  # 6 TCP, else reject (22)
        (0x28, 0, 0, 6),  # 7 ldh [6]: flags and fragment offset
        (0x45, 13, 0, 0x1FFF),  # 8 a fragment: reject (22)
        (0xB1, 0, 0, 0),  # 9 ldxb 4*([0]&0xf): IP header length
        (0x48, 0, 0, 0),  # 10 ldh [x+0]: source port
        (0x15, 0, 10, remote_port),  # 11 else reject (22)
        (0x48, 0, 0, 2),  # 12 ldh [x+2]: destination port
        (0x15, 7, 8, local_port),  # 13 accept (21), else reject (22)
        (0x15, 0, 7, 0x60),  # 14 IPv6, else reject (22)
        (0x30, 0, 0, 6),  # 15 ldb [6]: next header (TCP follows the fixed header)
        (0x15, 0, 5, 6),  # 16 TCP, else reject (22)
        (0x28, 0, 0, 40),  # 17 ldh [40]: source port
        (0x15, 0, 3, remote_port),  # 18 else reject (22)
        (0x28, 0, 0, 42),  # 19 ldh [42]: destination port
        (0x15, 0, 1, local_port),  # 20 else reject (22)
        (0x06, 0, 0, SNAP_BYTES),  # 21 accept, the headers only
        (0x06, 0, 0, 0),  # 22 reject
    )


def wait_for_kernel_stamps(limit_s: float = 0.5) -> bool:
    """Wait until the kernel stamps packets as they arrive (False if it never did).

    The first socket to ask for receive stamps switches stamping on for the
    whole kernel, but later, from a work queue: until then a packet carries no
    stamp, and reading it stamps it with the time of the read, which would be
    taken for its arrival. A datagram sent to itself over loopback, read a
    little later, shows when its stamp is its arrival.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(("127.0.0.1", 0))
        probe.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            probe.sendto(b".", probe.getsockname())
            time.sleep(0.002)
            _data, ancillary, _flags, _address = probe.recvmsg(16, STAMP_SPACE)
            stamp = kernel_stamp_ns(ancillary)
            if stamp is not None and time.time_ns() - stamp >= 1_000_000:
                return True
        return False
    finally:
        probe.close()


def stream_end(first_seq: int, high: int, seq: int, payload: int) -> int:
    """The stream offset just past a segment's bytes: `seq` is its sequence
    number, `first_seq` the stream's byte 0, `high` the highest offset seen.
    Sequence numbers wrap every 4 GiB, so the segment is placed within 2 GiB
    of `high` (TCP's window is far smaller)."""
    distance = (seq - first_seq - high) & 0xFFFFFFFF
    if distance >= 0x80000000:
        distance -= 0x100000000
    return high + distance + payload


def _ring_of(sock: socket.socket) -> mmap.mmap | None:
    """Give the packet socket a receive ring and map it (None where that cannot be)."""
    if platform.machine().lower() not in RING_ARCHITECTURES:
        return None
    try:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        frames = RING_BLOCK * RING_BLOCKS // RING_FRAME
        request = struct.pack("IIII", RING_BLOCK, RING_BLOCKS, RING_FRAME, frames)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
        return mmap.mmap(
            sock.fileno(),
            RING_BLOCK * RING_BLOCKS,
            mmap.MAP_SHARED,
            mmap.PROT_READ | mmap.PROT_WRITE,
        )
    except OSError:
        return None


class PacketStampsRefused(OSError):
    """No packet socket here (not Linux, or no CAP_NET_RAW)."""


class PacketStamps:
    """Arrival stamps of one TCP connection's incoming bytes, by stream offset.

    Open it (`open_for`) after the connection's socket is bound and before it
    connects, so the broker's SYN-ACK, which gives the stream's first sequence
    number, is seen. Then `stamp_at(end)`, for offsets in increasing order,
    answers when the byte just before `end` arrived.
    """

    def __init__(self, sock: socket.socket, ring: mmap.mmap | None = None) -> None:
        self._sock = sock
        self._ring = ring  # None: copies read with recvmsg
        self._next_frame = 0  # the ring's frame to look at next
        self._buffer = bytearray(SNAP_BYTES)
        self._view = memoryview(self._buffer)
        self._first_seq: int | None = None  # the stream's byte 0 (the SYN's sequence + 1)
        self._high = 0  # stream offset past the newest byte a packet brought
        # (offset past a packet's last byte, its stamp in ns), oldest first.
        self._packets: deque[tuple[int, int]] = deque()
        self.packets = 0
        self.missed = 0  # offsets asked for that no packet seen covered

    @classmethod
    def open_for(cls, connection: socket.socket, remote_port: int) -> "PacketStamps":
        """A packet socket for `connection` (bound, not yet connected)."""
        if not sys.platform.startswith("linux") or not hasattr(socket, "AF_PACKET"):
            raise PacketStampsRefused("packet sockets are Linux's")
        local_port = connection.getsockname()[1]
        # Every protocol's packets (ETH_P_ALL), though the kernel then also hands
        # it a clone of every packet sent on the machine for its filter to drop:
        # a socket for IPv4 alone is given its copy after IP and TCP took the
        # packet, stamped then, later than TCP's own stamp (`bench wire`: 1,277
        # to 1,982 of 2,000 events stamped after their read and flagged late,
        # the tap's median error 2.9 µs against 1.1).
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        except PermissionError as error:
            raise PacketStampsRefused(f"a packet socket needs CAP_NET_RAW: {error}") from error
        except OSError as error:
            raise PacketStampsRefused(str(error)) from error
        try:
            # Unbound, it hears every interface, from its creation: what came
            # before the filter is dropped (the connection has sent nothing yet).
            attach_filter(sock, connection_filter(remote_port, local_port))
            # Not handed the packets going out at all, which the filter would
            # drop: the kernel clones every packet any process on the machine
            # sends for each socket that listens to them, at the sender's cost
            # (the broker's and its clients'). Measured on loopback: a send cost
            # 0.5-1.3 µs more with such a socket open, 0.3-0.4 µs more with this.
            # An older kernel refuses the option; the filter still drops them.
            with contextlib.suppress(OSError):
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                while True:
                    sock.recv(1)
            # Asked for on the ring too: it makes the kernel stamp every packet
            # as it comes in (before TCP sees it), which the ring's header carries.
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            ring = _ring_of(sock)
            if ring is None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        except OSError as error:
            sock.close()
            raise PacketStampsRefused(str(error)) from error
        wait_for_kernel_stamps()
        return cls(sock, ring)

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def ring(self) -> bool:
        """Whether copies come from the ring (else from recvmsg)."""
        return self._ring is not None

    def drain(self) -> None:
        """Take every packet copy waiting (never blocks)."""
        if self._ring is not None:
            self._drain_ring(self._ring)
            return
        sock = self._sock
        buffer = self._buffer
        view = self._view
        while True:
            try:
                size, ancillary, _flags, address = sock.recvmsg_into([view], STAMP_SPACE)
            except BlockingIOError:
                return
            if address[2] != PACKET_HOST:
                continue  # loopback shows each packet going out too
            self._take(buffer, 0, size, kernel_stamp_ns(ancillary))

    def _drain_ring(self, ring: mmap.mmap) -> None:
        frame = self._next_frame
        frames = RING_BLOCK * RING_BLOCKS // RING_FRAME
        for _ in range(frames):  # once round at most: packets coming as fast as read
            at = frame * RING_FRAME
            status, _length, snapped, _mac, network, seconds, nanoseconds = _FRAME_HEADER(ring, at)
            if not status & TP_STATUS_USER:
                break
            # The filter passed packets coming in only (PACKET_HOST).
            self._take(ring, at + network, snapped, seconds * 1_000_000_000 + nanoseconds)
            ring[at : at + 4] = _KERNEL_OWNS
            frame = (frame + 1) % frames
        self._next_frame = frame

    def _take(
        self, packet: bytes | bytearray | mmap.mmap, start: int, size: int, stamp: int | None
    ) -> None:
        """One packet's copy (its IP header at `start`, `size` bytes of headers)."""
        if size < 20:
            return
        first = packet[start]
        if first >> 4 == 4:
            tcp = (first & 0x0F) * 4
            total = _U16(packet, start + 2)[0]
        else:
            tcp = 40
            total = 40 + _U16(packet, start + 4)[0]
        if size < tcp + 14:
            return
        seq = _U32(packet, start + tcp + 4)[0]
        if packet[start + tcp + 13] & _SYN:
            self._first_seq = (seq + 1) & 0xFFFFFFFF
            return
        payload = total - tcp - (packet[start + tcp + 12] >> 4) * 4
        if payload <= 0 or self._first_seq is None:
            return
        end = stream_end(self._first_seq, self._high, seq, payload)
        if end <= self._high:
            return  # a copy of bytes already seen (a retransmission): the first counts
        if stamp is None:
            return
        self._high = end
        self._packets.append((end, stamp))
        self.packets += 1

    def stamp_at(self, end: int) -> int | None:
        """When the byte at `end - 1` arrived (ns since the epoch), or None if no
        packet seen brought it. Offsets asked for must not decrease."""
        packets = self._packets
        if not packets or packets[-1][0] < end:
            self.drain()
        while packets and packets[0][0] < end:
            packets.popleft()
        if packets:
            return packets[0][1]
        self.missed += 1
        return None

    def dropped(self) -> int:
        """Packet copies the kernel dropped since the last call (its receive buffer full)."""
        with contextlib.suppress(OSError):
            statistics = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
            return int(struct.unpack("II", statistics)[1])
        return 0

    def close(self) -> None:
        if self._ring is not None:
            with contextlib.suppress(BufferError, ValueError):
                self._ring.close()
        with contextlib.suppress(OSError):
            self._sock.close()
