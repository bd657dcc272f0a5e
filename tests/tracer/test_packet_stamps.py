"""Packet stamps (rabbit/packet_stamps.py): each packet's arrival, however late it is read.

Over real loopback connections (the tests run as root, which a packet socket
needs) and against the real broker.
"""

import contextlib
import itertools
import select
import socket
import statistics
import time

import pytest

from rabbit import packet_stamps
from rabbit.arrival import SO_TIMESTAMPNS, STAMP_SPACE, kernel_stamp_ns
from rabbit.brokers import default_broker
from rabbit.frames import DeliveryParser
from rabbit.packet_stamps import PacketStamps, stream_end
from rabbit.raw import TraceConsumer
from tests.polling import wait_until
from tests.tracer.tapping import client

GAP_S = 0.005


@contextlib.contextmanager
def _connected_with_stamps(loopback="127.0.0.1"):
    """(server end, client end with packet stamps and its own kernel stamps, the stamps)."""
    family = socket.AF_INET6 if ":" in loopback else socket.AF_INET
    listener = socket.socket(family)
    listener.bind((loopback, 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    ours = socket.socket(family)
    ours.bind((loopback, 0))  # its own port, for the filter
    stamps = PacketStamps.open_for(ours, port)
    ours.connect((loopback, port))
    ours.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    theirs, _ = listener.accept()
    theirs.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.close()
    try:
        yield theirs, ours, stamps
    finally:
        stamps.close()
        theirs.close()
        ours.close()


@pytest.fixture(params=["ring", "recvmsg"])
def stamped_pair(request, monkeypatch):
    """A connection with packet stamps: the copies read from the kernel's ring,
    and with recvmsg (where the ring cannot be had)."""
    if request.param == "recvmsg":
        monkeypatch.setattr(packet_stamps, "RING_ARCHITECTURES", frozenset())
    with _connected_with_stamps() as pair:
        assert pair[2].ring == (request.param == "ring")
        yield pair


def _send_apart(sock, parts):
    for part in parts:
        sock.sendall(part)
        time.sleep(GAP_S)


def test_it_gives_each_packet_the_stamp_its_socket_gives_when_read_at_once(stamped_pair):
    theirs, ours, stamps = stamped_pair
    socket_stamps = []
    offset = 0
    for index in range(20):
        theirs.sendall(bytes([index]) * (100 + index))
        assert select.select([ours], [], [], 5)[0], "nothing came"
        data, ancillary, _flags, _address = ours.recvmsg(4096, STAMP_SPACE)
        offset += len(data)
        socket_stamps.append((offset, kernel_stamp_ns(ancillary)))
    # The same packet: the packet socket's copy is stamped as the packet comes
    # in, the TCP socket's a few hundred nanoseconds on, as TCP takes it (more
    # only when the kernel was interrupted between the two: a busy host).
    differences_ns = [socket_ns - stamps.stamp_at(end) for end, socket_ns in socket_stamps]
    assert stamps.missed == 0
    # Never after TCP's own: the copy is taken before IP and TCP see the packet.
    assert all(difference >= 0 for difference in differences_ns), differences_ns
    assert statistics.median(abs(difference) for difference in differences_ns) < 20_000
    assert all(abs(difference) < 5_000_000 for difference in differences_ns), differences_ns


def test_it_asks_not_to_be_handed_the_packets_going_out(stamped_pair):
    # Outgoing packets would be cloned for it at every sender's cost, then dropped.
    _theirs, _ours, stamps = stamped_pair
    option = stamps._sock.getsockopt(packet_stamps.SOL_PACKET, packet_stamps.PACKET_IGNORE_OUTGOING)
    assert option == 1


@pytest.mark.parametrize("loopback", ["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])
def test_it_stamps_each_packet_before_tcp_takes_it_over_either(loopback):
    with _connected_with_stamps(loopback) as (theirs, ours, stamps):
        for index, size in enumerate((60, 80, 100)):
            theirs.sendall(bytes([index]) * size)
            assert select.select([ours], [], [], 5)[0], "nothing came"
            data, ancillary, _flags, _address = ours.recvmsg(4096, STAMP_SPACE)
            assert len(data) == size
            packet_ns = stamps.stamp_at(sum((60, 80, 100)[: index + 1]))
            assert packet_ns is not None
            # The packet socket's copy is taken as the packet comes in, before
            # TCP's (a socket for one protocol only gets its copy after TCP).
            assert packet_ns <= kernel_stamp_ns(ancillary)
            time.sleep(GAP_S)
        assert stamps.missed == 0


def test_it_keeps_each_packets_arrival_when_they_wait_unread(stamped_pair):
    theirs, ours, stamps = stamped_pair
    parts = [b"a" * 50, b"b" * 70, b"c" * 90, b"d" * 110, b"e" * 130]
    _send_apart(theirs, parts)
    time.sleep(0.05)
    data = ours.recv(4096)  # all at once, merged in the socket
    assert len(data) == sum(len(part) for part in parts)
    ends = [sum(len(part) for part in parts[: index + 1]) for index in range(len(parts))]
    arrived = [stamps.stamp_at(end) for end in ends[:3]]
    inside_fourth = stamps.stamp_at(ends[2] + 10)  # a message ending inside a packet
    arrived += [stamps.stamp_at(end) for end in ends[3:]]
    assert inside_fourth == arrived[3]
    gaps_ms = [(later - earlier) / 1e6 for earlier, later in itertools.pairwise(arrived)]
    # Each its own time (merged, they would share the last one), together as far
    # apart as the sends (a sleep lasts at least GAP_S; one packet delayed on a
    # busy host shortens the gap after it, never the whole span).
    assert all(gap >= 1.0 for gap in gaps_ms), gaps_ms
    assert sum(gaps_ms) >= GAP_S * 1000 * (len(parts) - 1) * 0.9, gaps_ms
    assert time.time_ns() - arrived[-1] >= 40_000_000  # not the time of the read
    assert stamps.missed == 0


def test_it_reads_the_ring_round_and_round(monkeypatch):
    """A ring of 256 frames, 600 packets read in three goes: every frame given
    back to the kernel is filled again, in order."""
    monkeypatch.setattr(packet_stamps, "RING_BLOCKS", 1)
    with _connected_with_stamps() as (theirs, ours, stamps):
        assert stamps.ring
        received = 0
        ends = []
        arrived = []
        for _go in range(3):
            for index in range(200):
                # Each message read before the next is sent: a packet each.
                theirs.sendall(bytes([index]) * 10)
                assert select.select([ours], [], [], 5)[0], "nothing came"
                received += len(ours.recv(65536))
                ends.append(received)
            arrived += [stamps.stamp_at(end) for end in ends[len(arrived) :]]
    assert received == 6000
    assert stamps.packets == 600  # round the ring more than twice
    assert stamps.missed == 0
    assert None not in arrived
    assert arrived == sorted(arrived)
    assert len(set(arrived)) == 600  # each its own packet's


def test_it_places_segments_across_the_sequence_numbers_wrapping():
    first = 0xFFFFFF00
    # The first 0x80 bytes, then a segment whose sequence number wrapped to 0x10.
    assert stream_end(first, 0, first, 0x80) == 0x80
    assert stream_end(first, 0x80, 0x80 + first - 0x100000000 + 0x100000000, 0x20) == 0xA0
    assert stream_end(first, 0x100, 0x00000000, 0x40) == 0x140
    # Four GiB and more into the stream.
    high = (1 << 32) + 5000
    seq = (first + high) & 0xFFFFFFFF
    assert stream_end(first, high, seq, 1000) == high + 1000
    # A retransmission of bytes already seen ends at or before the highest offset.
    assert stream_end(first, 0x140, (first + 0x100) & 0xFFFFFFFF, 0x40) == 0x140


def _whole_deliveries_waiting(consumer):
    """How many whole deliveries wait unread in the consumer's socket (a look, not a read)."""
    with socket.fromfd(consumer.fileno(), socket.AF_INET, socket.SOCK_STREAM) as look:
        try:
            waiting = look.recv(1 << 16, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return 0
    ends = DeliveryParser(decode_headers=False, on_method=lambda *_: None).message_ends(waiting)
    return sum(1 for _end, delivers in ends if delivers)


def test_it_stamps_deliveries_read_in_bulk_with_their_own_arrival(scratch_vhost):
    consumer = TraceConsumer(
        default_broker().amqp_url(), vhost=scratch_vhost, packet_stamps=True
    ).connect()
    connection = client(scratch_vhost)
    try:
        assert consumer.packet_stamps is not None, consumer.packet_stamps_refused
        channel = connection.channel()
        channel.queue_declare("raw-gathered")
        consumer.consume("raw-gathered", 100)
        published = []
        for index in range(8):
            published.append(time.time_ns())
            channel.basic_publish("", "raw-gathered", f"message {index}".encode())
            # The whole delivery in the socket before the next publish: a broker
            # slowed by a busy host would otherwise send the end of one and the
            # next in one segment, and then they rightly share that segment's stamp.
            wait_until(
                lambda: _whole_deliveries_waiting(consumer),
                check=lambda waiting, wanted=index + 1: waiting >= wanted,
                timeout=5,
                interval=0.002,
                what=f"delivery {index} whole in the socket",
            )
            time.sleep(GAP_S)
        assert select.select([consumer.fileno()], [], [], 10)[0], "nothing came"
        time.sleep(0.2)  # all of them wait in the socket, merged
        got = []
        while len(got) < 8 and select.select([consumer.fileno()], [], [], 5)[0]:
            got += consumer.read_gathered()
        assert [delivery.body for delivery in got] == [f"message {i}".encode() for i in range(8)]
        arrived_us = [delivery.arrived_us for delivery in got]
        assert arrived_us == sorted(arrived_us)
        # Each its own packet's stamp, not one for the lot (as the socket's own
        # stamp would give the bytes merged in it).
        assert len(set(arrived_us)) == 8, arrived_us
        for sent_ns, delivery in zip(published, got, strict=True):
            after_ms = (delivery.arrived_us * 1000 - sent_ns) / 1e6
            # After its publish, and before the read at least 0.2 s later.
            assert 0 < after_ms < 150, after_ms
            assert delivery.stamp_error_us == 0
    finally:
        connection.close()
        consumer.close()
