"""Property tests over the firehose header decoder (tracer.tap.decoding) and its way back.

Header tables are generated as the Python values an AMQP table decoder yields:
any nesting, bytes, decimals, timestamps, arrays, 32-bit overflowed integers,
doubles, None, booleans, long strings. Nothing raises, every value is stored
as JSON and read back equal, and what a replay makes of it goes on the wire
(pika's encoder) and comes back as the same table.
"""

import datetime
import decimal
import json

import orjson
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from replay import outgoing
from tracer.tap.decoding import REPLAY_HEADER, decode, recover_timestamp, restore_amqp_value

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
T0_US = 1_700_000_000_000_000

# Names the code under test gives a meaning to. Hypothesis also draws that code's
# string constants, so without this a drawn name or text is sometimes one of them:
# "$decode_error" is what the decoder writes in place of properties it could not
# read (stored_properties fails on finding it anywhere), and the headers a replay
# writes itself make a table a replay's replay, counted on (tests/replay/test_outgoing.py).
DECODE_ERROR = "$decode_error"
REPLAY_HEADERS = (REPLAY_HEADER, outgoing.REPLAY_COUNT_HEADER, outgoing.BODY_CUT_HEADER)


def _not_the_decode_error(text: str) -> bool:
    return DECODE_ERROR not in text


# Table keys are AMQP short strings (at most 255 bytes). A key "$bytes" and
# friends is how the stored JSON spells values JSON lacks: a header table
# holding only such a key is the one shape that cannot come back (see below).
keys = st.text(min_size=0, max_size=40).filter(
    lambda k: (
        len(k.encode()) <= 255
        and "\x00" not in k
        and not k.startswith("$")
        and _not_the_decode_error(k)
        and k not in REPLAY_HEADERS
    )
)
texts = st.text(max_size=200).filter(lambda t: "\x00" not in t and _not_the_decode_error(t))
int32 = st.integers(-(2**31), 2**31 - 1)
decimals = st.builds(
    lambda raw, places: decimal.Decimal(raw).scaleb(-places),
    int32,
    st.integers(0, 9),
)
timestamps = st.integers(0, 2**33).map(lambda s: datetime.datetime.fromtimestamp(s, datetime.UTC))
leaves = st.one_of(
    st.none(),
    st.booleans(),
    int32,
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False),
    decimals,
    timestamps,
    texts,
    st.binary(max_size=200),
    st.sampled_from(["<script>alert(1)</script>", "\u202e\U0001f600", "'\"%/"]),
    # 100 kB of text, built when drawn: written out, it made the strategy's repr 100 kB.
    st.just(100_000).map(lambda size: "x" * size),
)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(keys, children, max_size=6)
    ),
    max_leaves=40,
)
tables = st.dictionaries(keys, values, max_size=8)


def on_the_wire(table):
    """The table as a table decoder yields it to the tap.

    The generated values already have the decoded shapes (aware UTC datetimes
    of whole seconds, Decimals of an int32 and a scale, text or bytes, floats
    for doubles). pika's own decoder is not used here: it truncates doubles
    to integers.
    """
    return table


def _floats_as_decimals(value):
    """What a replay sends for a double: the decimal of the same value."""
    if isinstance(value, dict):
        return {key: _floats_as_decimals(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_floats_as_decimals(item) for item in value]
    if isinstance(value, float):
        return decimal.Decimal(repr(value)).normalize()
    return value


def trace_headers(headers, **extra):
    return {
        "exchange_name": "orders",
        "routing_keys": ["order.created"],
        "properties": {"headers": headers, "correlation_id": "c-1", "timestamp": 1_700_000_000},
        "node": "rabbit@n1",
        "vhost": "/",
        "connection": "127.0.0.1:1 -> 127.0.0.1:5672",
        "channel": 1,
        "user": "guest",
        "routed_queues": ["q"],
        **extra,
    }


def stored_properties(headers, body=b"{}"):
    event = decode("publish.orders", trace_headers(headers), body, T0_US, 65536)
    assert DECODE_ERROR not in event.properties_json
    # Standard JSON (PostgreSQL's jsonb is as strict), never a NUL.
    assert "\\u0000" not in event.properties_json.replace("\\\\u0000", "")
    return json.loads(event.properties_json)


@PROPERTY_SETTINGS
@given(tables)
@example({"nested": {"a": [1, {"b": b"\x00\xff"}]}, "big": 2**63 - 1})
@example({"deep": [[[[[[[[[[{"x": [decimal.Decimal("-1.50")]}]]]]]]]]]]})
def test_it_stores_any_header_table_as_json_and_gives_it_back(table):
    received = on_the_wire(table)
    stored = stored_properties(received)
    assert restore_amqp_value(stored["headers"]) == received


@PROPERTY_SETTINGS
@given(tables)
@example({"ratio": 0.25, "list": [1.5, {"small": -3e-7}]})
@example({"ratio": 0.25, "list": [1.5, {"big": 1e300}]})
def test_a_replay_puts_the_same_table_on_the_wire_again(table):
    received = on_the_wire(table)
    source = outgoing.Source(
        message_id=7,
        vhost="/",
        exchange="orders",
        routing_key="order.created",
        properties=stored_properties(received),
        body=b"{}",
        body_size=2,
    )
    try:
        sent = outgoing.prepare(source, outgoing.Options(), username="guest")
    except outgoing.Refused as refused:
        # Only a double no AMQP decimal can hold is refused, with the reason.
        assert "floating-point" in str(refused)
        return
    properties = sent.pika_properties()
    again = type(properties)()
    again.decode(b"".join(properties.encode()))
    assert again.correlation_id == "c-1"
    assert again.headers.pop("x-warren-replay-of") == 7
    assert again.headers.pop("x-warren-replay-count") == 1
    received.pop("x-warren-replay-of", None)
    received.pop("x-warren-replay-count", None)
    assert again.headers == _floats_as_decimals(received)


# Anything at all where the firehose puts its fields: decode never raises and
# every column it fills is safe to store (text without NUL, JSON that parses).
anything = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=50),
        st.binary(max_size=50),
        decimals,
        timestamps,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = (
    "exchange_name",
    "routing_keys",
    "properties",
    "node",
    "vhost",
    "connection",
    "channel",
    "user",
    "routed_queues",
    "redelivered",
    "timestamp_in_ms",
)


@PROPERTY_SETTINGS
@given(
    st.sampled_from(["publish.", "publish.a.b", "deliver.q", "deliver.", "", "x\x00y"]),
    st.dictionaries(st.sampled_from(FIELDS), anything),
    st.binary(max_size=300),
    st.integers(0, 2**31),
)
def test_it_never_raises_on_whatever_the_headers_hold(routing_key, headers, body, limit):
    event = decode(routing_key, headers, body, T0_US, limit)
    for name in ("vhost", "node", "exchange", "routing_key", "queue", "user", "connection"):
        value = getattr(event, name)
        assert isinstance(value, str) and "\x00" not in value, name
    assert isinstance(json.loads(event.properties_json), dict)
    assert all(isinstance(k, str) for k in json.loads(event.routing_keys_json))
    assert event.body == body[:limit] and event.body_size == len(body)
    assert event.channel is None or 0 <= event.channel < 2**31


@PROPERTY_SETTINGS
@given(keys, st.text(alphabet="\x00ab", min_size=1, max_size=20))
@example("", "\x00")
@example("h", "a\x00\x00b")
def test_a_nul_in_a_header_value_is_kept_visible_not_fatal(name, value):
    stored = stored_properties({name or "h": value})
    assert stored["headers"][name or "h"] == value.replace("\x00", "\\u0000")


@given(st.integers(0, 2**40), st.integers(-(2**30), 2**30))
@settings(max_examples=500, deadline=None)
def test_it_recovers_a_millisecond_timestamp_cut_to_32_bits(ms_since_2023, offset_ms):
    sent_ms = 1_672_531_200_000 + ms_since_2023 % (10 * 365 * 86_400_000)
    arrival_us = (sent_ms + offset_ms // 1000) * 1000  # captured within ±1 s… ±12 days
    overflowed = (sent_ms + 2**31) % 2**32 - 2**31  # what a signed 32-bit field carries
    assume(abs(overflowed % 2**32 - arrival_us // 1_000_000) > 366 * 86400)  # not seconds
    assert recover_timestamp(overflowed, arrival_us) == sent_ms


def test_the_one_table_shape_that_does_not_come_back_is_documented():
    """A table whose only key is "$bytes" reads as an encoded value: known and rare."""
    received = on_the_wire({"h": {"$bytes": "AAAA"}})
    stored = stored_properties(received)
    assert restore_amqp_value(stored["headers"]) == {"h": b"\x00\x00\x00"}


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 10 * 1024 * 1024])
def test_it_keeps_the_size_of_a_body_it_cuts(size):
    body = b"\xff" * size
    event = decode("publish.", trace_headers({}), body, T0_US, 65536)
    assert event.body_size == size
    assert len(event.body) == min(size, 65536)
    assert event.body_truncated is (size > 65536)
    assert orjson.loads(event.properties_json)["correlation_id"] == "c-1"
