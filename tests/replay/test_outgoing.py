"""What a replay sends, decided without a broker: properties, headers, masks, comparisons."""

import pytest

from replay import edits, rpc
from replay.outgoing import Options, Refused, Source, prepare, replay_count


def source(**fields):
    base = {
        "message_id": 41,
        "vhost": "/",
        "exchange": "orders",
        "routing_key": "order.created",
        "properties": {
            "content_type": "application/json",
            "message_id": "m-1",
            "timestamp": 1_700_000_000,
            "headers": {"x-tenant": "acme", "blob": {"$bytes": "AAE="}},
        },
        "body": b"{}",
        "body_size": 2,
    }
    return Source(**{**base, **fields})


def test_it_keeps_everything_but_adds_the_replay_headers():
    out = prepare(source(), Options(), username="guest")

    assert (out.vhost, out.exchange, out.routing_key) == ("/", "orders", "order.created")
    assert out.properties["headers"] == {
        "x-tenant": "acme",
        "blob": {"$bytes": "AAE="},
        "x-warren-replay-of": 41,
        "x-warren-replay-count": 1,
    }
    sent = out.pika_properties()
    assert sent.headers["blob"] == b"\x00\x01"  # AMQP bytes again, not their JSON form
    assert (sent.message_id, sent.timestamp) == ("m-1", 1_700_000_000)


def test_it_drops_message_id_and_timestamp_when_asked():
    out = prepare(source(), Options(keep_message_id=False, keep_timestamp=False))
    assert "message_id" not in out.properties and "timestamp" not in out.properties
    assert out.notes == ["message_id dropped", "timestamp dropped"]


def test_it_counts_replays_of_replays():
    assert replay_count({}, None) == 1
    assert replay_count({"x-warren-replay-of": 3}, None) == 2
    assert replay_count({"x-warren-replay-count": 4}, 9) == 5
    assert replay_count({"x-warren-replay-count": b"2"}, 9) == 3


def test_it_refuses_a_cut_body_unless_allowed_or_replaced():
    cut = source(body=b"01", body_size=10, body_truncated=True)
    with pytest.raises(Refused, match="cut at 2 of 10 bytes"):
        prepare(cut, Options())
    assert prepare(cut, Options(body=b"new")).body == b"new"
    assert (
        prepare(cut, Options(allow_truncated=True)).properties["headers"]["x-warren-body-cut-at"]
        == 2
    )


def test_it_puts_masked_values_back_and_refuses_a_mask_with_no_original():
    original = {"token": "s3cret", "nested": {"password": "p"}, "list": ["a"]}
    edited = {"token": "********", "nested": {"password": "********"}, "list": ["********"]}
    assert edits.restore_masks(edited, original) == original
    with pytest.raises(edits.EditError, match="no original value"):
        edits.restore_masks({"new": "********"}, original)


def test_it_sends_the_original_body_when_the_masked_text_is_unchanged():
    body = b'{"password": "hunter2", "n": 1}'
    shown, body_format = edits.body_as_text(body)
    assert "hunter2" not in shown and body_format == "json"
    assert edits.parse_body(shown, "json", body) == body


def test_it_compares_json_answers_without_caring_for_order_or_volatile_fields():
    before = b'{"a": 1, "took_ms": 3, "b": [1, 2]}'
    after = b'{"b": [1, 2], "a": 1}'
    assert rpc.changed(before, after, ["took_ms"]) is False
    assert rpc.changed(before, after) is True
    assert rpc.changed(None, after) is None


def test_it_computes_nearest_rank_percentiles():
    report = rpc.distribution([5, 1, 4, 2, 3, None])
    assert report == {"count": 5, "p50_ms": 3, "p95_ms": 5, "max_ms": 5, "mean_ms": 3.0}
    assert rpc.distribution([])["p50_ms"] is None
