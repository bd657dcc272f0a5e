"""tracer.tap.decoding on real firehose frames from the broker, and on garbage."""

import datetime
import decimal
import time

import orjson
import pytest

from rabbit import amqp
from tests.polling import wait_until
from tests.tracer.tapping import client
from tracer.tap.decoding import decode, recover_timestamp, restore_amqp_value
from tracer.times import now_us

HEADERS = {
    "nested": {
        "list": [1, "two", decimal.Decimal("1.25")],
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
    },
    "raw": b"\xff\x00\x01",
    "Authorization": "Bearer abc",
}


@pytest.fixture
def traced(mgmt, scratch_vhost):
    """A scratch vhost with tracing on and a trace queue bound to everything."""
    connection = client(scratch_vhost)
    channel = connection.channel()
    channel.queue_declare("trace", arguments={"x-max-length": 1000})
    channel.queue_bind("trace", "amq.rabbitmq.trace", "#")
    mgmt.set_tracing(scratch_vhost, True)
    yield scratch_vhost, channel
    mgmt.set_tracing(scratch_vhost, False)
    connection.close()


def read_trace(channel, count, limit=65536):
    frames = []

    def more():
        method, props, body = channel.basic_get("trace", auto_ack=True)
        if method is not None:
            frames.append(
                decode(
                    method.routing_key,
                    props.headers,
                    body,
                    now_us(),
                    limit,
                    tap_redelivered=method.redelivered,
                )
            )
        return len(frames) >= count

    wait_until(more, timeout=10, interval=0.01, what=f"{count} trace events")
    return frames


def test_it_decodes_a_request_publish_and_its_delivery(traced):
    vhost, channel = traced
    channel.queue_declare("rpc_queue")
    sent_ms = int(time.time() * 1000)
    props = amqp.properties(
        correlation_id="corr-1",
        reply_to="amq.gen-x",
        timestamp=sent_ms,
        headers=HEADERS,
        content_type="application/json",
        delivery_mode=2,
    )
    channel.basic_publish("", "rpc_queue", b'{"n": 30}', props)
    channel.basic_get("rpc_queue", auto_ack=True)
    published, delivered = read_trace(channel, 2)

    assert (published.event, delivered.event) == ("publish", "deliver")
    assert published.vhost == vhost and published.node.startswith("rabbit@")
    assert published.exchange == "" and published.routing_key == "rpc_queue"
    assert orjson.loads(published.routing_keys_json) == ["rpc_queue"]
    assert orjson.loads(published.routed_queues_json) == ["rpc_queue"]
    assert published.queue == "" and delivered.queue == "rpc_queue"
    assert delivered.routed_queues_json is None
    assert published.user == "guest" and " -> " in published.connection
    assert published.channel == 1
    assert (published.correlation_id, published.reply_to) == ("corr-1", "amq.gen-x")
    properties = orjson.loads(published.properties_json)
    assert properties["timestamp"] == sent_ms  # arrived cut to 32 bits, recovered
    assert properties["content_type"] == "application/json"
    assert properties["headers"]["nested"]["list"] == [1, "two", {"$decimal": "1.25"}]
    assert properties["headers"]["nested"]["when"] == {"$timestamp": "2024-01-02T03:04:05+00:00"}
    assert properties["headers"]["raw"] == {"$bytes": "/wAB"}
    assert restore_amqp_value(properties["headers"])["raw"] == b"\xff\x00\x01"
    assert published.body == b'{"n": 30}' and published.body_size == 9
    assert published.fingerprint == delivered.fingerprint
    assert published.dedupe_key != delivered.dedupe_key
    assert delivered.redelivered is False


def test_it_sees_a_redelivery(traced):
    _, channel = traced
    channel.queue_declare("work")
    channel.basic_publish("", "work", b"job")
    method, _, _ = channel.basic_get("work", auto_ack=False)
    channel.basic_nack(method.delivery_tag, requeue=True)
    channel.basic_get("work", auto_ack=True)
    published, first, second = read_trace(channel, 3)
    assert (first.redelivered, second.redelivered) == (False, True)
    assert first.fingerprint == second.fingerprint == published.fingerprint


def test_it_decodes_direct_reply_to(traced):
    _, channel = traced
    channel.queue_declare("rpc_queue")
    channel.basic_consume("amq.rabbitmq.reply-to", lambda *a: None, auto_ack=True)
    channel.basic_publish(
        "",
        "rpc_queue",
        b"q",
        amqp.properties(correlation_id="d1", reply_to="amq.rabbitmq.reply-to"),
    )
    _, props, _ = channel.basic_get("rpc_queue", auto_ack=True)
    channel.basic_publish("", props.reply_to, b"a", amqp.properties(correlation_id="d1"))
    request, delivered, reply = read_trace(channel, 3)
    assert request.reply_to.startswith("amq.rabbitmq.reply-to.")
    assert reply.routing_key == request.reply_to
    assert orjson.loads(reply.routed_queues_json) == []


def test_it_cuts_big_and_binary_bodies_and_keeps_their_size(traced):
    _, channel = traced
    big = bytes(range(256)) * 40_000  # 10 MB, not UTF-8
    channel.basic_publish("", "nowhere", big)
    channel.basic_publish("", "nowhere", b"\xc3\x28<script>alert(1)</script>")
    large, invalid = read_trace(channel, 2, limit=1024)
    assert large.body_size == len(big) and large.body_truncated is True
    assert large.body == big[:1024]
    assert invalid.body == b"\xc3\x28<script>alert(1)</script>"
    assert invalid.body_truncated is False


def test_it_names_exchanges_with_dots_and_topic_routing_keys(traced):
    _, channel = traced
    channel.exchange_declare("weather.farms", "topic")
    channel.basic_publish(
        "weather.farms", "sports.ohio", b"?", amqp.properties(reply_to="cb", correlation_id="w")
    )
    (event,) = read_trace(channel, 1)
    assert event.exchange == "weather.farms" and event.routing_key == "sports.ohio"


def test_it_turns_any_frame_into_an_event_without_raising():
    odd = [
        ("publish.", None, b"x"),
        ("deliver.q", {"properties": "not a table", "channel": "one"}, None),
        ("something", {"routing_keys": b"raw", "properties": {b"\xff": {1, 2}}}, b""),
        (
            "publish.",
            {"properties": {"headers": {"n": 10**30, "z": "a\x00b", "f": float("nan")}}},
            b"y",
        ),
    ]
    for key, headers, body in odd:
        event = decode(key, headers, body, now_us(), 10)
        assert event.event in ("publish", "deliver")
        orjson.loads(event.properties_json)
    nul = decode("publish.", {"properties": {"headers": {"z": "a\x00b"}}}, b"", now_us(), 10)
    assert "\\u0000" not in nul.properties_json.replace("\\\\u0000", "")


def test_it_recovers_timestamps_in_seconds_and_milliseconds():
    now = 1_730_000_000_123_456  # µs
    assert recover_timestamp(1_730_000_000, now) == 1_730_000_000
    sent_ms = 1_730_000_000_100
    cut = (sent_ms % 2**32) - (2**32 if sent_ms % 2**32 >= 2**31 else 0)
    assert recover_timestamp(cut, now) == sent_ms
    assert recover_timestamp("x", now) == "x"


def test_it_prefers_the_brokers_own_timestamp_when_present():
    headers = {"timestamp_in_ms": 1_730_000_000_500, "vhost": "v"}
    event = decode("publish.", headers, b"", 1_730_000_009_000_000, 10)
    assert event.captured_us == 1_730_000_000_500_000
