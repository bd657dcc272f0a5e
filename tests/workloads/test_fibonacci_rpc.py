"""Fibonacci RPC and its direct reply-to twin against the real broker."""

import json

from tests.workloads.conftest import queues_left
from workloads import run_bounded
from workloads.fibonacci_rpc import fibonacci


def test_it_computes_fibonacci_numbers():
    assert [fibonacci(n) for n in range(10)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]
    assert fibonacci(35) == 9227465


def test_it_answers_every_fibonacci_call_correctly_over_one_callback_queue(
    mgmt, scratch_vhost, amqp_url
):
    result = run_bounded("fibonacci", amqp_url, scratch_vhost, calls=12, timeout_s=10)

    assert (result.sent, result.answered, result.unanswered) == (12, 12, 0)
    assert len({call.correlation_id for call in result.calls}) == 12
    callback_queues = {call.reply_to for call in result.calls}
    assert len(callback_queues) == 1
    assert callback_queues.pop().startswith("amq.gen-")  # server-named, exclusive
    for call in result.calls:
        request = json.loads(call.request_body)
        (reply,) = [json.loads(body) for body in call.replies]
        assert call.service == "rpc_queue"
        assert reply["n"] == request["n"]
        assert reply["fibonacci"] == fibonacci(request["n"])
        assert reply["reply_to"] == call.reply_to
        assert call.answered_at >= call.sent_at
        assert 0 < call.client_ms < 10_000
    assert queues_left(mgmt, scratch_vhost) == []


def test_it_answers_over_direct_reply_to_without_any_callback_queue(mgmt, scratch_vhost, amqp_url):
    result = run_bounded("direct_reply_to", amqp_url, scratch_vhost, calls=8, timeout_s=10)

    assert (result.sent, result.answered) == (8, 8)
    for call in result.calls:
        request = json.loads(call.request_body)
        (reply,) = [json.loads(body) for body in call.replies]
        assert call.service == "rpc_queue_direct"
        assert call.reply_to == "amq.rabbitmq.reply-to"
        # The server sees the broker's rewritten pseudo-queue name, not the bare one.
        assert reply["reply_to"].startswith("amq.rabbitmq.reply-to.")
        assert reply["fibonacci"] == fibonacci(request["n"])
    assert queues_left(mgmt, scratch_vhost) == []


def test_it_runs_several_fibonacci_servers_when_asked(mgmt, scratch_vhost, amqp_url):
    result = run_bounded(
        "fibonacci", amqp_url, scratch_vhost, calls=10, timeout_s=10, servers=2, work_ms_per_n=2
    )

    servers = {json.loads(call.replies[0])["server"] for call in result.calls}
    assert servers == {"demo fibonacci server 1", "demo fibonacci server 2"}
    assert queues_left(mgmt, scratch_vhost) == []
