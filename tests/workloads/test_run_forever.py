"""A workload left running (the demo) rides out dropped connections and bad messages."""

import threading

import pytest

from rabbit.management_http import segment
from tests.polling import wait_until
from workloads import WORKLOADS, Ledger


@pytest.fixture
def fibonacci_running(scratch_vhost, amqp_url):
    """The Fibonacci workload running until the test ends, at 20 calls per second."""
    stop = threading.Event()
    ledger = Ledger(keep=False)
    thread = threading.Thread(
        target=WORKLOADS["fibonacci"].run_forever,
        args=(amqp_url, scratch_vhost, 20, stop),
        kwargs={"ledger": ledger},
        daemon=True,
    )
    thread.start()
    try:
        wait_until(lambda: ledger.answered_count >= 5, 10, 0.1, "5 answers from the workload")
        yield ledger
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive(), "run_forever did not stop"


@pytest.mark.timeout(60)
def test_it_keeps_serving_after_the_broker_closes_its_connections(
    mgmt, scratch_vhost, fibonacci_running
):
    ledger = fibonacci_running

    def connections():
        return mgmt.get(f"vhosts/{segment(scratch_vhost)}/connections")

    # The management API lists a new connection after its next statistics tick.
    wait_until(
        lambda: len(connections()) == 2, 10, 0.1, "the server's and the client's connections"
    )
    first = connections()
    for connection in first:
        mgmt.close_connection(connection["name"])
    before = ledger.answered_count

    wait_until(lambda: ledger.answered_count >= before + 10, 20, 0.1, "10 answers more")
    closed = {c["name"] for c in first}

    def reconnected():
        now = connections()
        return len(now) == 2 and closed.isdisjoint(c["name"] for c in now)

    wait_until(reconnected, 10, 0.1, "both connections opened again")
    assert {c["client_properties"]["connection_name"] for c in connections()} == {
        "demo fibonacci server 1",
        "demo fibonacci client",
    }


@pytest.mark.timeout(60)
def test_it_answers_a_malformed_request_with_an_error_and_keeps_serving(
    mgmt, scratch_vhost, fibonacci_running
):
    ledger = fibonacci_running
    mgmt.declare_queue(scratch_vhost, "bad-replies", durable=False)
    routed = mgmt.publish(
        scratch_vhost,
        "",
        "rpc_queue",
        "<script>not json",
        properties={"reply_to": "bad-replies", "correlation_id": "bad-1"},
    )
    assert routed["routed"] is True

    def error_reply():
        return mgmt.peek(scratch_vhost, "bad-replies", count=1)

    (reply,) = wait_until(error_reply, 10, 0.1, "the error reply in bad-replies")
    assert reply["properties"]["correlation_id"] == "bad-1"
    assert "bad request" in reply["payload"]
    before = ledger.answered_count
    wait_until(lambda: ledger.answered_count >= before + 5, 10, 0.1, "5 answers more")
