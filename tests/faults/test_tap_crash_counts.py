"""The tap killed between commit and ack in the middle of RPC traffic, then restarted.

The tracer's own tests check that stored == emitted after SIGKILL and that
re-read events are marked; this one checks what a person reads afterwards:
every call is one flow with its four events, no reply or redelivery counted
twice, and the latency statistics count each call once.
"""

import pytest

from tests.polling import wait_until
from tests.tracer.rpc import sequential_calls
from tests.tracer.tapping import TapProcess
from tracer.models import Flow, Message

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CALLS = 30


def test_it_counts_no_call_twice_after_a_crash_before_the_ack(scratch_vhost, viewer_client):
    crashing = TapProcess(scratch_vhost, args=["--crash-after-batches", "2", "--batch-size", "20"])
    crashing.start()
    try:
        ids = sequential_calls(scratch_vhost, CALLS)
        crashing.process.wait(40)
    finally:
        exit_code = crashing.stop()  # kills it if it is still there: no tap outlives the test
    assert exit_code == 70  # died after committing a batch it never acked
    stored_before = Message.objects.filter(vhost=scratch_vhost).count()
    assert 0 < stored_before < 4 * CALLS
    with TapProcess(scratch_vhost):
        wait_until(
            lambda: Flow.objects.filter(vhost=scratch_vhost, status="complete").count() == CALLS,
            timeout=30,
            what="every call complete",
        )
        stats = viewer_client.get(f"/api/flows/stats?vhost={scratch_vhost}").json()
        listed = viewer_client.get(f"/api/flows?vhost={scratch_vhost}&limit=1000").json()
    assert Message.objects.filter(vhost=scratch_vhost).count() == 4 * CALLS
    duplicates = sum(Message.objects.values_list("duplicates", flat=True))
    assert 0 < duplicates <= 20  # the re-read batch, recognised, stored once
    flows = Flow.objects.filter(vhost=scratch_vhost)
    assert sorted(flows.values_list("correlation_id", flat=True)) == sorted(ids)
    assert set(flows.values_list("replies", "redeliveries")) == {(1, 0)}
    assert all(Message.objects.filter(flow_id=f.id).count() == 4 for f in flows)
    (service,) = stats["services"]
    assert (service["service"], service["count"]) == ("rpc_queue", CALLS)
    assert len(listed["results"]) == CALLS
    print(f"\ntap crash before ack: {duplicates} events read again, each call counted once")
