"""The seed workloads (docs/architecture.md) run with the tap: what Warren stores matches what the
clients saw, call by call (same correlation id, the client's own stopwatch)."""

import json
import statistics

import pytest

from rabbit.brokers import default_amqp_url
from tests.polling import wait_until
from tests.tracer.tapping import TapProcess
from tracer.models import Flow, Message
from workloads import run_bounded

pytestmark = pytest.mark.django_db(transaction=True)


def run_traced(vhost, name, calls, tap_args=(), **options):
    with TapProcess(vhost, args=list(tap_args)):
        result = run_bounded(name, default_amqp_url(), vhost, calls=calls, timeout_s=15, **options)
        expected = sum(1 for call in result.calls if call.replies)
        wait_until(
            lambda: Flow.objects.filter(vhost=vhost, status="complete").count() >= expected,
            timeout=15,
            what=f"{expected} complete flows of {name}",
        )
        settle(vhost)
    return result


def settle(vhost):
    """Wait until the tap has stored what the broker traced (no new rows for a moment)."""
    last = [-1]

    def quiet():
        count = Message.objects.filter(vhost=vhost).count()
        same, last[0] = count == last[0], count
        return same

    wait_until(quiet, timeout=15, interval=0.4, what="the tap to catch up")


def flow_of(call):
    return Flow.objects.get(correlation_id=call.correlation_id)


def body(message_id):
    return bytes(Message.objects.get(id=message_id).body)


def test_it_stores_each_fibonacci_call_as_one_complete_flow_of_four_events(scratch_vhost):
    result = run_traced(scratch_vhost, "fibonacci", calls=20)
    assert result.unanswered == 0
    differences = []
    for call in result.calls:
        flow = flow_of(call)
        assert flow.status == "complete" and flow.service == call.service == "rpc_queue"
        events = Message.objects.filter(flow_id=flow.id).order_by("captured_at")
        assert [(m.event, m.queue or "") for m in events] == [
            ("publish", ""),
            ("deliver", "rpc_queue"),
            ("publish", ""),
            ("deliver", call.reply_to),
        ]
        assert body(flow.request_id) == call.request_body
        assert body(flow.reply_id) == call.replies[0]
        differences.append(abs(flow.end_to_end_ms - call.client_ms))
    median = statistics.median(differences)
    print(f"\nfibonacci: end_to_end_ms vs client stopwatch, median |difference| {median:.3f} ms")
    # The client's stopwatch includes its own threads' scheduling (servers share its
    # process): small beside the latency itself; `bench accuracy` measures it finely.
    client_median = statistics.median(call.client_ms for call in result.calls)
    assert median < max(5.0, 0.25 * client_median)


def test_it_pairs_the_threaded_control_centre_replies_to_their_requests(scratch_vhost):
    result = run_traced(scratch_vhost, "control_centre", calls=15, threads=3)
    assert result.unanswered == 0 and len({call.reply_to for call in result.calls}) == 1
    for call in result.calls:
        flow = flow_of(call)
        assert flow.pairing == "correlation_id" and flow.status == "complete"
        assert body(flow.request_id) == call.request_body
        # The traced reply is the one this call's thread received: n + 1.
        assert body(flow.reply_id) == call.replies[0] == str(int(call.request_body) + 1).encode()


def test_it_pairs_the_variant_without_correlation_ids_by_reply_to(scratch_vhost):
    result = run_traced(scratch_vhost, "control_centre_no_correlation", calls=10)
    assert result.unanswered == 0
    flows = list(Flow.objects.filter(vhost=scratch_vhost))
    assert len(flows) == 10
    assert {flow.pairing for flow in flows} == {"reply_to"}
    for flow in flows:
        assert flow.status == "complete" and flow.correlation_id is None
        assert body(flow.reply_id) == str(int(body(flow.request_id)) + 1).encode()


def test_it_completes_direct_reply_to_calls_without_a_reply_delivery(scratch_vhost):
    result = run_traced(scratch_vhost, "direct_reply_to", calls=10)
    assert result.unanswered == 0
    for call in result.calls:
        flow = flow_of(call)
        assert flow.status == "complete" and flow.reply_to.startswith("amq.rabbitmq.reply-to.")
        assert flow.reply_delivered_at is None and flow.end_to_end_ms is None
        assert Message.objects.filter(flow_id=flow.id).count() == 3


def test_it_shows_two_replies_for_the_weather_farms_sports_ohio(scratch_vhost):
    result = run_traced(scratch_vhost, "weather", calls=12)
    assert result.unanswered == 0
    services = set()
    for call in result.calls:
        flow = flow_of(call)
        services.add(flow.service)
        assert flow.service == call.service
        assert flow.replies == len(call.replies)
        if flow.service == "amq.topic / sports.ohio":
            assert flow.replies == 2
    assert "amq.topic / sports.ohio" in services


def test_it_times_out_unanswered_calls_and_counts_a_redelivery(scratch_vhost):
    result = run_traced(
        scratch_vhost,
        "slow_failing",
        calls=8,
        tap_args=["--rpc-timeout", "1"],
        late=1,
        never=1,
        crash=1,
        late_delay_s=1.5,
        restart_delay_s=0.3,
    )
    by_behaviour = {}
    for call in result.calls:
        by_behaviour.setdefault(json.loads(call.request_body)["simulate"], []).append(call)
    (never,) = by_behaviour["never"]
    wait_until(lambda: flow_of(never).status == "timeout", timeout=10, what="the timeout")
    (late,) = by_behaviour["late"]
    late_flow = flow_of(late)
    assert late_flow.status == "complete" and late_flow.late is True
    assert late_flow.latency_ms > 1000
    (crashed,) = by_behaviour["crash"]
    crashed_flow = flow_of(crashed)
    assert crashed_flow.status == "complete" and crashed_flow.redeliveries == 1
    assert (
        Message.objects.filter(flow_id=crashed_flow.id, event="deliver", redelivered=True).count()
        == 1
    )
    for call in by_behaviour["ok"]:
        assert flow_of(call).status == "complete"
