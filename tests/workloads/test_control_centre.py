"""The control centre and its compute nodes, with and without correlation ids."""

from collections import Counter

from tests.workloads.conftest import queues_left
from workloads import run_bounded


def _thread_number(call):
    return int(call.thread.rsplit(" ", 1)[1]) - 1


def test_it_hands_each_thread_its_own_replies_over_one_shared_callback_queue(
    mgmt, scratch_vhost, amqp_url
):
    result = run_bounded(
        "control_centre", amqp_url, scratch_vhost, calls=15, timeout_s=10, threads=3
    )

    assert (result.sent, result.answered, result.unanswered) == (15, 15, 0)
    assert len({call.reply_to for call in result.calls}) == 1  # ONE callback queue for all
    assert len({call.correlation_id for call in result.calls}) == 15
    for call in result.calls:
        n = int(call.request_body)
        assert call.service == "compute_node"
        assert call.replies == [str(n + 1).encode()]  # the compute node adds 1
        # Thread k only asks for n % 3 == k: a reply handed to another thread shows here.
        assert n % 3 == _thread_number(call), (n, call.thread)
    assert Counter(call.thread for call in result.calls) == {
        "control centre client 1": 5,
        "control centre client 2": 5,
        "control centre client 3": 5,
    }
    assert queues_left(mgmt, scratch_vhost) == []


def test_it_matches_replies_by_order_without_correlation_ids(mgmt, scratch_vhost, amqp_url):
    result = run_bounded(
        "control_centre_no_correlation", amqp_url, scratch_vhost, calls=10, timeout_s=10
    )

    assert (result.sent, result.answered) == (10, 10)
    assert {call.correlation_id for call in result.calls} == {None}
    assert {call.service for call in result.calls} == {"compute_node_legacy"}
    for call in result.calls:
        n = int(call.request_body)
        assert call.replies == [str(n + 1).encode()]
        assert n % 2 == _thread_number(call)
    # Each thread has its own callback queue: replies are matched by order on it.
    queue_of = {call.thread: call.reply_to for call in result.calls}
    assert len(queue_of) == 2
    assert len(set(queue_of.values())) == 2
    assert all(call.reply_to == queue_of[call.thread] for call in result.calls)
    assert queues_left(mgmt, scratch_vhost) == []
