"""A sender with a full properties dictionary and two competing receivers."""

import json
from collections import Counter

from tests.workloads.conftest import queues_left
from workloads import run_bounded


def test_it_deals_messages_between_two_competing_receivers_with_their_properties(
    mgmt, scratch_vhost, amqp_url
):
    result = run_bounded("sender_receiver", amqp_url, scratch_vhost, calls=10, timeout_s=10)

    assert (result.sent, result.answered, result.unanswered) == (10, 10, 0)
    receivers = Counter(call.thread for call in result.calls)
    assert set(receivers) == {"receiver 1", "receiver 2"}
    assert all(count >= 2 for count in receivers.values())
    for call in result.calls:
        assert call.service == "shipping_notices"
        (receipt,) = [json.loads(body) for body in call.replies]  # each message once
        assert receipt["receiver"] == call.thread
        assert receipt["body"] == json.loads(call.request_body)
        assert receipt["type"] == "shipment.dispatched"
        assert receipt["content_type"] == "application/json"
        assert receipt["content_encoding"] == "utf-8"
        assert receipt["correlation_id"] == call.correlation_id
        assert receipt["message_id"] and receipt["timestamp"] > 0
        assert receipt["app_id"] == "warren-demo"
        assert receipt["delivery_mode"] == 2
        assert receipt["headers"]["sequence"] == receipt["body"]["sequence"]
        assert receipt["redelivered"] is False
    assert queues_left(mgmt, scratch_vhost) == []
