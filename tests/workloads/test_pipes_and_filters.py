"""Pipes and filters: orders through a chain of queues, failures to one failure queue."""

import json

from tests.workloads.conftest import queues_left
from workloads import run_bounded
from workloads.pipes_and_filters import trace_id_of, traceparent


def test_it_makes_w3c_traceparents_that_keep_the_trace_id():
    first = traceparent()
    version, trace_id, span_id, flags = first.split("-")
    assert (version, flags, len(trace_id), len(span_id)) == ("00", "01", 32, 16)
    assert trace_id_of(traceparent(trace_id)) == trace_id
    assert traceparent(trace_id) != traceparent(trace_id)  # a new span each hop
    assert trace_id_of("garbage") is None


def test_it_takes_good_orders_to_the_end_and_bad_ones_to_the_failure_queue(
    mgmt, scratch_vhost, amqp_url
):
    result = run_bounded(
        "pipes_and_filters", amqp_url, scratch_vhost, calls=12, timeout_s=10, fail_every=4
    )

    assert (result.sent, result.answered, result.unanswered) == (12, 12, 0)
    archived, failed = [], []
    for call in result.calls:
        assert call.service == "pipeline.validate"
        assert call.reply_to is None
        (arrived,) = [json.loads(body) for body in call.replies]
        order = json.loads(call.request_body)
        assert call.correlation_id == order["order_id"]
        if call.thread == "pipeline archiver":
            archived.append((order, arrived))
        else:
            assert call.thread == "pipeline failure monitor"
            failed.append((order, arrived))

    # Every 4th order is bad: quantity 0 fails at validate, an unknown SKU two hops later.
    assert len(archived) == 9
    assert sorted(report["failed_at"] for _order, report in failed) == [
        "price",
        "validate",
        "validate",
    ]
    for order, report in failed:
        assert report["order_id"] == order["order_id"]
        expected_reason = "quantity" if report["failed_at"] == "validate" else "no price"
        assert expected_reason in report["reason"]
    for order, final in archived:
        assert final["order_id"] == order["order_id"]
        assert [hop["step"] for hop in final["history"]] == ["validate", "enrich", "price"]
        assert final["total_cents"] > 0
        # One trace across the hops, a new span at each.
        trace_ids = {trace_id_of(hop["traceparent"]) for hop in final["history"]}
        assert len(trace_ids) == 1 and None not in trace_ids
        assert len({hop["traceparent"] for hop in final["history"]}) == 3
    assert queues_left(mgmt, scratch_vhost) == []
