"""Queue arguments as fields: each checked against the queue type and its value's shape."""

from console.queue_arguments import build_queue


def _build(**values):
    base = {"name": "orders", "queue_type": "classic", "durable": "on"}
    return build_queue({**base, **values})


def test_it_builds_a_classic_queue_with_its_arguments():
    spec, errors = _build(
        message_ttl="60000",
        expires="3600000",
        max_length="1000",
        max_length_bytes="1048576",
        overflow="reject-publish-dlx",
        dead_letter_exchange="dlx",
        dead_letter_routing_key="orders.dead",
        single_active_consumer="on",
        max_priority="10",
    )
    assert errors == {}
    assert spec is not None
    assert spec.arguments == {
        "x-message-ttl": 60000,
        "x-expires": 3600000,
        "x-max-length": 1000,
        "x-max-length-bytes": 1048576,
        "x-overflow": "reject-publish-dlx",
        "x-dead-letter-exchange": "dlx",
        "x-dead-letter-routing-key": "orders.dead",
        "x-single-active-consumer": True,
        "x-max-priority": 10,
    }


def test_it_builds_a_quorum_queue_with_a_delivery_limit():
    spec, errors = _build(queue_type="quorum", delivery_limit="5", overflow="reject-publish")
    assert errors == {}
    assert spec.arguments == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 5,
        "x-overflow": "reject-publish",
    }


def test_it_builds_a_stream_with_its_retention():
    spec, errors = _build(
        queue_type="stream",
        max_age="7D",
        max_length_bytes="20000000000",
        stream_max_segment_size_bytes="100000000",
    )
    assert errors == {}
    assert spec.arguments == {
        "x-queue-type": "stream",
        "x-max-age": "7D",
        "x-max-length-bytes": 20000000000,
        "x-stream-max-segment-size-bytes": 100000000,
    }


def test_it_refuses_arguments_the_type_does_not_take():
    _spec, errors = _build(queue_type="stream", message_ttl="1000", single_active_consumer="on")
    assert errors["message_ttl"] == (
        "Message TTL (ms): not for a stream queue (only classic, quorum)."
    )
    assert "not for a stream queue" in errors["single_active_consumer"]
    _spec, errors = _build(delivery_limit="3")
    assert errors["delivery_limit"] == "Delivery limit: not for a classic queue (only quorum)."


def test_it_refuses_values_of_the_wrong_shape():
    _spec, errors = _build(message_ttl="ten", expires="0", max_priority="300")
    assert errors["message_ttl"] == "Message TTL (ms): “ten” is not a whole number."
    assert errors["expires"] == "Auto-expire after (ms): must be at least 1."
    assert errors["max_priority"] == "Max priority: must be at most 255."
    _spec, errors = _build(queue_type="stream", max_age="7 days")
    assert "is not a number and a unit" in errors["max_age"]


def test_it_refuses_an_overflow_the_type_lacks():
    _spec, errors = _build(queue_type="quorum", overflow="reject-publish-dlx")
    assert errors["overflow"] == (
        "Overflow behaviour: a quorum queue takes drop-head, reject-publish."
    )


def test_it_needs_a_dead_letter_exchange_for_a_dead_letter_key():
    _spec, errors = _build(dead_letter_routing_key="x")
    assert "needs a dead-letter exchange" in errors["dead_letter_routing_key"]


def test_it_keeps_quorum_and_stream_queues_durable():
    _spec, errors = _build(queue_type="quorum", durable="", auto_delete="on")
    assert errors["durable"] == "Durable: a quorum queue is always durable."
    assert errors["auto_delete"] == "Auto-delete: a quorum queue cannot be auto-deleted."


def test_it_takes_raw_extra_arguments_and_refuses_clashes():
    spec, errors = _build(extra_arguments='{"x-queue-version": 2}')
    assert errors == {} and spec.arguments == {"x-queue-version": 2}
    _spec, errors = _build(message_ttl="5", extra_arguments='{"x-message-ttl": 6}')
    assert "already set by its field" in errors["extra_arguments"]
    _spec, errors = _build(extra_arguments='{"x-delivery-limit": 2}')
    assert "x-delivery-limit is not for a classic queue" in errors["extra_arguments"]
    _spec, errors = _build(extra_arguments="[1]")
    assert "must be a JSON object" in errors["extra_arguments"]
    _spec, errors = _build(extra_arguments="{nope")
    assert "not valid JSON" in errors["extra_arguments"]


def test_it_refuses_a_missing_or_reserved_name():
    assert "needs a name" in _build(name=" ")[1]["name"]
    assert "reserved" in _build(name="amq.mine")[1]["name"]
