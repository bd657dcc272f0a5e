"""Header tables the tap's reader cannot read never stop capture.

The tap's own field-table decoder (rabbit/field_tables.py) is checked against
pika's `decode_table`, the reference every pika client uses: the same values
for any table pika writes, and for any bytes pika can read; and whatever the
bytes, the reader (rabbit/raw.py) hands the message on instead of raising. A
real broker then carries a table with a timestamp beyond the year 9999 and an
unknown field type through the firehose, and the tap stores both and goes on.
"""

import datetime
import struct

import pika.data
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rabbit.brokers import default_broker
from rabbit.field_tables import decode_table
from rabbit.frames import DeliveryParser
from rabbit.raw import TraceConsumer
from tests.polling import wait_until
from tests.tracer.tapping import TapProcess
from tracer.models import Message
from tracer.tap.decoding import decode

# --- against pika ------------------------------------------------------------------

keys = st.text(max_size=20).filter(lambda key: len(key.encode()) <= 255)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=50)
    | st.binary(max_size=50)
    | st.decimals(min_value=-10_000, max_value=10_000, places=2, allow_nan=False)
    | st.datetimes(
        min_value=datetime.datetime(1970, 1, 1), max_value=datetime.datetime(9999, 12, 31)
    ).map(lambda moment: moment.replace(microsecond=0))
)
tables = st.dictionaries(
    keys,
    st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    ),
    max_size=6,
)


def encoded(table: dict) -> bytes:
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, table)
    return b"".join(pieces)


@given(tables)
def test_it_reads_every_table_pika_writes_as_pika_reads_it(table):
    data = encoded(table)
    theirs, end = pika.data.decode_table(data, 0)
    assert end == len(data)
    assert decode_table(data) == theirs


def table_bytes(entries: bytes) -> bytes:
    return struct.pack(">I", len(entries)) + entries


def entry(key: bytes, kind: bytes, value: bytes) -> bytes:
    return bytes([len(key)]) + key + kind + value


@given(tables, st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4))
@example({"a": 1}, [(0, ord("Z"))])
@example({"t": {"k": 1, "s": "x"}, "after": []}, [(6, 0x0A)])  # the inner table's length cut short
def test_it_reads_what_pika_can_read_of_damaged_bytes(table, flips):
    data = bytearray(encoded(table))
    for position, value in flips:
        if len(data) > 4:
            data[4 + position % (len(data) - 4)] = value
    data = bytes(data)
    try:
        theirs, end = pika.data.decode_table(data, 0)
    except Exception:  # noqa: BLE001 - pika refuses it: only ours is held to anything
        return
    try:
        ours = decode_table(data)
    except Exception:  # noqa: BLE001 - refusing is fine here; the reader catches it
        return
    if end == len(data):
        assert ours == _floats_truncated(theirs, ours)


def _floats_truncated(theirs: object, ours: object) -> object:
    """pika reads f and d as integers (it truncates them); Warren keeps floats."""
    if isinstance(ours, float):
        return ours if int(ours) == theirs else theirs
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return {key: _floats_truncated(theirs.get(key), value) for key, value in ours.items()}
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [_floats_truncated(a, b) for a, b in zip(theirs, ours, strict=True)]
    return theirs


def test_it_keeps_a_timestamp_beyond_the_year_9999_as_its_seconds():
    data = table_bytes(
        entry(b"late", b"T", struct.pack(">Q", 2**63)) + entry(b"then", b"S", b"\0\0\0\x02ok")
    )
    with pytest.raises((OverflowError, ValueError, OSError)):
        pika.data.decode_table(data, 0)
    assert decode_table(data) == {"late": 2**63, "then": "ok"}


# --- the reader never raises over a header table -------------------------------------


def deliver_frames(tag: int, header_table: bytes, body: bytes) -> bytes:
    def frame(kind: int, payload: bytes) -> bytes:
        return struct.pack(">BHI", kind, 1, len(payload)) + payload + b"\xce"

    method = (
        struct.pack(">HH", 60, 60)
        + b"\x03ctg"
        + struct.pack(">QB", tag, 0)
        + b"\x12amq.rabbitmq.trace"
        + b"\x08publish."
    )
    header = struct.pack(">HHQH", 60, 0, len(body), 1 << 13) + header_table
    return frame(1, method) + frame(2, header) + frame(3, body)


@given(st.binary(max_size=200))
@example(table_bytes(entry(b"k", b"Z", b"")))  # a field type AMQP does not have
@example(table_bytes(entry(b"k", b"S", b"\xff\xff\xff\xff")))  # a length past the end
@example(b"\xff\xff\xff\xff")
def test_the_reader_hands_on_every_message_whatever_its_header_bytes(header_table):
    parser = DeliveryParser(decode_headers=True, on_method=lambda *_: None)
    frames = deliver_frames(7, header_table, b"body") + deliver_frames(8, encoded({}), b"next")
    deliveries = parser.parse(frames)
    assert [delivery.tag for delivery in deliveries] == [7, 8]
    first, second = deliveries
    assert first.body == b"body" and second.body == b"next"
    assert (first.headers is None) == (first.header_error is not None)
    assert second.headers == {} and second.header_error is None


def test_an_unreadable_table_becomes_an_event_that_says_why():
    event = decode(
        b"publish.x",
        None,
        b"the body",
        1_700_000_000_000_000,
        65536,
        header_bytes=b"\x00",
        header_error="AMQPRawError: unknown field type 'Z' in a header table",
        vhost="orders",
    )
    assert event.vhost == "orders"
    assert event.event == "publish"
    assert event.body == b"the body"
    assert "unknown field type 'Z'" in event.properties_json
    assert "$decode_error" in event.properties_json


# --- through a real broker and the tap ---------------------------------------------


def publish_raw(vhost: str, routing_key: str, header_table: bytes, body: bytes) -> None:
    """Basic.Publish with a header table written by hand: no client library
    writes a timestamp past 9999 or a field type AMQP lacks, but a broker passes
    them on."""
    broker = default_broker()
    connection = TraceConsumer(broker.amqp_url(), vhost=vhost, name="warren-test-raw").connect()
    try:
        publish = struct.pack(">H", 0) + b"\x00" + bytes([len(routing_key)]) + routing_key.encode()
        connection._method(1, 60, 40, publish + b"\x00")
        header = struct.pack(">HHQH", 60, 0, len(body), 1 << 13) + header_table
        connection._send(connection._frame(2, 1, header) + connection._frame(3, 1, body))
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_tap_stores_messages_whose_headers_no_decoder_reads_and_goes_on(scratch_vhost):
    beyond_9999 = table_bytes(
        entry(b"late", b"T", struct.pack(">Q", 2**63)) + entry(b"ok", b"t", b"\x01")
    )
    with TapProcess(scratch_vhost) as tap:
        publish_raw(scratch_vhost, "first", beyond_9999, b"one")
        publish_raw(scratch_vhost, "second", encoded({"plain": "yes"}), b"two")
        stored = wait_until(
            lambda: list(Message.objects.filter(vhost=scratch_vhost).order_by("id")),
            check=lambda messages: len(messages) == 2,
            timeout=15.0,
            what="both messages stored",
        )
        assert tap.process.poll() is None
    first, second = stored
    assert first.routing_keys == ["first"]
    assert first.properties["headers"]["ok"] is True
    assert first.properties["headers"]["late"] == 2**63
    assert bytes(first.body) == b"one"
    assert second.routing_keys == ["second"]
    assert second.properties["headers"] == {"plain": "yes"}


def test_it_finds_where_each_whole_message_ends_however_the_bytes_are_cut():
    first = deliver_frames(1, encoded({}), b"a" * 10)
    second = deliver_frames(2, encoded({}), b"")[:-8]  # an empty body: no body frame at all
    third = deliver_frames(3, encoded({}), b"c" * 3)
    stream = first + second + third
    whole = len(first), len(first) + len(second), len(stream)
    for cut in range(1, len(stream)):
        parser = DeliveryParser(decode_headers=False, on_method=lambda *_: None)
        head, tail = stream[:cut], stream[cut:]
        ends = parser.message_ends(head)
        complete = [(end, True) for end in whole if end <= cut]
        # Where messages end within what has come; else all of it is taken as it is.
        assert ends == complete or (not complete and ends[-1][0] <= cut and not ends[-1][1])
        taken = ends[-1][0]
        parsed = parser.parse(head[:taken])
        parsed += parser.parse(head[taken:] + tail)
        assert [delivery.tag for delivery in parsed] == [1, 2, 3]
        assert [delivery.body for delivery in parsed] == [b"a" * 10, b"", b"c" * 3]
