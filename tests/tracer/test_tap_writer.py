"""The tap's writer (tracer.tap.process): a batch the database refuses is stored row by row,
and what the rows did adds up to one batch result, as if the batch had gone in whole."""

import dataclasses

import pytest

from tests.conftest import unique_name
from tests.live.listen import Listener
from tests.tracer.frames import frame, rpc_call
from tracer.models import Flow, Message
from tracer.store import pairing, storage
from tracer.tap.config import TapConfig
from tracer.tap.process import Tap
from tracer.tap.reader import VhostReader

pytestmark = pytest.mark.django_db


@pytest.fixture
def tap():
    config = TapConfig(
        vhosts=["v"],
        amqp_url="amqp://unused",
        queue="warren.tap",
        max_length=1000,
        max_bytes=10_000_000,
        body_limit=65536,
        timeout_s=30,
    )
    writer = Tap(config)
    writer._start_session()
    return writer


def _orphan_then_its_request(vhost):
    """A reply stored alone (an orphan flow), then its request with an event the
    database refuses: (orphan flow id, the refused batch)."""
    _, first = rpc_call(at=0, vhost=vhost)
    storage.store_batch([first[0]])  # the reply queue becomes known
    _, call = rpc_call(at=100, vhost=vhost)
    storage.store_batch(call[2:])
    orphan = Flow.objects.get(vhost=vhost, status="orphan")
    request, delivered = call[:2]
    delivered.backlog = True
    refused = frame("publish", 50, vhost=vhost, routing_key="elsewhere")
    refused.properties_json = "{not json"
    return orphan.id, [request, delivered, refused]


def test_it_keeps_every_field_of_the_result_when_a_refused_batch_is_stored_row_by_row(tap):
    vhost = unique_name("rows")
    orphan_id, batch = _orphan_then_its_request(vhost)

    result = tap._store(batch)

    request, delivered, refused = batch
    assert "$unstorable" in Message.objects.get(id=refused.id).properties  # stored stripped
    assert (result.received, result.stored) == (3, 3)
    assert result.backlog == 1
    assert (result.first_id, result.last_id) == (request.id, refused.id)
    assert result.last_event_us == max(event.captured_us for event in batch)
    assert [flow.id for flow in result.flows] == [request.id]
    assert result.deleted_flow_ids == {orphan_id}
    assert not Flow.objects.filter(id=orphan_id).exists()


def test_it_tells_live_pages_the_flows_gone_in_a_batch_stored_row_by_row(tap):
    vhost = unique_name("rows")
    orphan_id, batch = _orphan_then_its_request(vhost)
    reader = VhostReader(tap, vhost)
    listener = Listener()
    try:
        tap._handle([(reader, 1, list(enumerate(batch, start=1)))])

        def told(frames):
            return any(
                frame["type"] == "live.flows"
                and orphan_id in frame["gone"]
                and any(event["vhost"] == vhost for event in frame["events"])
                for frame in frames
            )

        assert told(listener.collect(told))
    finally:
        listener.close()


def test_it_merges_every_field_of_two_batch_results():
    def flow(flow_id):
        return pairing.Flow(
            id=flow_id,
            vhost="v",
            service="s",
            correlation_id=None,
            reply_to="r",
            pairing="correlation_id",
            status="pending",
            started_at=1,
            requested_at=1,
            request_delivered_at=None,
            replied_at=None,
            reply_delivered_at=None,
            latency_ms=None,
            queue_wait_ms=None,
            service_ms=None,
            end_to_end_ms=None,
            request_id=flow_id,
            reply_id=None,
            replies=0,
            redeliveries=0,
            late=False,
            backlog=False,
        )

    earlier = storage.BatchResult(
        received=4,
        stored=3,
        backlog=2,
        first_id=10,
        last_id=12,
        last_event_us=900,
        flows=[flow(10), flow(11), flow(12)],
        deleted_flow_ids={5, 6},
    )
    later = storage.BatchResult(
        received=2,
        stored=2,
        backlog=1,
        first_id=20,
        last_id=21,
        last_event_us=800,
        flows=[flow(5), flow(11)],  # 5 written again, 11 changed again
        deleted_flow_ids={12},
    )

    earlier.merge(later)

    checked = {
        "received": 6,
        "stored": 5,
        "backlog": 3,
        "first_id": 10,
        "last_id": 21,
        "last_event_us": 900,
        "flows": [10, 5, 11],  # each flow once, in its last state
        "deleted_flow_ids": {6, 12},
    }
    # A field added to BatchResult must be merged, and checked here.
    assert {field.name for field in dataclasses.fields(storage.BatchResult)} == set(checked)
    got = {name: getattr(earlier, name) for name in checked}
    got["flows"] = [flow.id for flow in earlier.flows]
    assert got == checked
    assert earlier.flows[2] is later.flows[1]
