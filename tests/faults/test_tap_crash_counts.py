"""The tap's two crashes in the middle of RPC traffic: capture between its spool
commit and its ack (the broker delivers those events again), and the indexer
between its database commit and telling the spool; then restarted.

The tracer's own tests check that stored == emitted; this one checks what a
person reads afterwards: every call is one flow with its four events, no reply
or redelivery counted twice, and the latency statistics count each call once.
"""

import pytest

from tests.polling import wait_until
from tests.tracer.rpc import sequential_calls
from tests.tracer.tapping import TapProcess
from tracer.models import Flow, Message, TapSession

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CALLS = 30


def test_it_counts_no_call_twice_after_a_crash_before_the_ack(scratch_vhost, viewer_client):
    # Capture dies after its second commit, before the ack; the indexer dies
    # after its fourth batch, before the spool hears of it.
    crashing = TapProcess(
        scratch_vhost,
        args=["--crash-capture-after", "2", "--crash-after-batches", "4", "--batch-size", "20"],
    )
    crashing.start()
    try:
        # Calls apart: capture commits a few times while they come, and dies
        # with the rest of them still to read.
        ids = sequential_calls(scratch_vhost, CALLS // 3, pause_s=0.25)
        # The next capture is reading (its gap recorded) before the rest: some
        # calls are surely measured live, however slowly it came back.
        wait_until(
            lambda: "gap recorded" in crashing.output(),
            timeout=30,
            what="capture back after its crash",
        )
        ids += sequential_calls(scratch_vhost, CALLS - CALLS // 3)
        crashing.process.wait(40)
    finally:
        exit_code = crashing.stop()  # kills it if it is still there: no tap outlives the test
    assert exit_code == 70  # the indexer died after committing a batch
    stored_before = Message.objects.filter(vhost=scratch_vhost).count()
    assert 0 < stored_before < 4 * CALLS
    with TapProcess(scratch_vhost) as again:
        wait_until(
            lambda: Flow.objects.filter(vhost=scratch_vhost, status="complete").count() == CALLS,
            timeout=30,
            what="every call complete",
        )
        stats = viewer_client.get(f"/api/flows/stats?vhost={scratch_vhost}").json()
        listed = viewer_client.get(f"/api/flows?vhost={scratch_vhost}&limit=1000").json()
        copies = sum(s.duplicates for s in TapSession.objects.all())
    assert Message.objects.filter(vhost=scratch_vhost).count() == 4 * CALLS
    assert not Message.objects.filter(vhost=scratch_vhost, duplicates__gt=0).exists()
    flows = Flow.objects.filter(vhost=scratch_vhost)
    assert sorted(flows.values_list("correlation_id", flat=True)) == sorted(ids)
    assert set(flows.values_list("replies", "redeliveries")) == {(1, 0)}
    assert all(Message.objects.filter(flow_id=f.id).count() == 4 for f in flows)
    (service,) = stats["services"]
    # Calls whose events waited in the tap queue while no tap read it are
    # backlog: their times are not true, so statistics leave them out.
    measured = flows.filter(backlog=False).count()
    assert 0 < measured < CALLS and flows.filter(backlog=True).count() == CALLS - measured
    assert (service["service"], service["count"]) == ("rpc_queue", measured)
    assert len(listed["results"]) == CALLS
    print(f"\ntap crashes: {copies} events the broker sent again, dropped; each call counted once")
    del again
