"""tracer.store.pairing: a reply routed by key to a queue of another name (docs/architecture.md,
Pairing). Frameworks such as nameko set `reply_to` to a routing key on their own topic
exchange; the caller's reply queue is bound there with the caller's id, and the reply
is published to that exchange with routing key = reply_to. Its delivery comes from the
bound queue, which the reply publish's `routed_queues` names."""

import itertools
import random

from tests.tracer.test_pairing import T0, MemoryStore, deliver, flows_of, publish
from tracer.store import flow_keys

CALLER = "5f0c2a1e-caller"  # reply_to: a routing key, not a queue
REPLY_QUEUE = f"rpc.reply-{CALLER}"  # the caller's queue, bound with its id
EXCHANGE = "framework-rpc"


def routed_call(base, at=0, corr="n1", reply_to=CALLER, routed=(REPLY_QUEUE,), fp=None):
    """The four events of one call whose reply travels through the framework's exchange."""
    fp = fp or base
    return [
        publish(
            base,
            at,
            exchange=EXCHANGE,
            routing_key="greeting.hello",
            correlation_id=corr,
            reply_to=reply_to,
            fingerprint=fp,
        ),
        deliver(
            base + 1,
            at + 1_000,
            exchange=EXCHANGE,
            routing_key="greeting.hello",
            queue="rpc-greeting",
            correlation_id=corr,
            reply_to=reply_to,
            fingerprint=fp,
        ),
        publish(
            base + 2,
            at + 4_000,
            exchange=EXCHANGE,
            routing_key=reply_to,
            correlation_id=corr,
            routed_queues=routed,
            fingerprint=fp + 100,
        ),
        *[
            deliver(
                base + 3 + index,
                at + 5_500 + index * 100,
                exchange=EXCHANGE,
                routing_key=reply_to,
                queue=queue,
                correlation_id=corr,
                fingerprint=fp + 100,
            )
            for index, queue in enumerate(routed)
        ],
    ]


def test_it_links_the_delivery_of_a_reply_routed_by_key_to_another_queue():
    flows, flow_of = flows_of(routed_call(10))
    flow = flows[10]
    assert flow.status == "complete" and flow.reply_to == CALLER
    assert flow.reply_delivered_at == T0 + 5_500
    assert (flow.latency_ms, flow.end_to_end_ms) == (4.0, 5.5)
    assert flow_of == {10: 10, 11: 10, 12: 10, 13: 10}
    assert flow.service == "framework-rpc / greeting.hello"


def test_it_links_it_in_any_arrival_order_and_any_batches():
    events = routed_call(10) + routed_call(20, at=2_000, corr="n2")
    expected, expected_flow_of = flows_of(events)
    assert all(flow.end_to_end_ms is not None for flow in expected.values())
    for order in itertools.permutations(range(len(events)), len(events)):
        if random.Random(sum(order)).random() > 0.002:  # a sample of the 40,320 orders
            continue
        shuffled = [events[i] for i in order]
        assert flows_of(shuffled)[0] == expected
        store = MemoryStore(T0 + 3600 * 1_000_000)
        for batch in (shuffled[:3], shuffled[3:5], shuffled[5:]):
            store.store(batch)
        assert store.flows == expected
        assert {e.id: e.flow_id for e in store.events.values()} == expected_flow_of


def test_it_leaves_out_a_delivery_from_a_queue_the_reply_was_not_routed_to():
    events = routed_call(10)
    # Same key, same body, but from a queue the broker did not route this reply to.
    stray = deliver(
        20, 5_000, exchange=EXCHANGE, routing_key=CALLER, queue="audit", correlation_id="n1",
        fingerprint=110,
    )  # fmt: skip
    flows, flow_of = flows_of([*events, stray])
    assert flows[10].reply_delivered_at == T0 + 5_500
    assert flow_of[20] is None and 20 not in flows[10].members


def test_it_counts_every_queue_a_reply_was_routed_to_and_times_the_first():
    routed = (REPLY_QUEUE, f"{REPLY_QUEUE}-mirror")
    flows, flow_of = flows_of(routed_call(10, routed=routed))
    assert flows[10].reply_delivered_at == T0 + 5_500
    assert flow_of[13] == flow_of[14] == 10


def test_it_pairs_the_pattern_without_a_correlation_id_by_reply_to():
    events = routed_call(10, corr="") + routed_call(20, at=9_000, corr="")
    flows, flow_of = flows_of(events, known=frozenset({("v", CALLER)}))
    assert [flows[i].pairing for i in (10, 20)] == ["reply_to", "reply_to"]
    assert (flows[10].reply_id, flows[20].reply_id) == (12, 22)
    assert flows[10].end_to_end_ms == 5.5 and flows[20].end_to_end_ms == 5.5
    assert flow_of[13] == 10 and flow_of[23] == 20


def test_it_still_links_a_reply_queue_delivery_when_routed_queues_are_unknown():
    # Events stored before routed queues were read: the reply queue's own delivery still counts.
    events = routed_call(10, reply_to="amq.gen-R", routed=("amq.gen-R",))
    events[2] = flow_keys.Event(**{**_fields(events[2]), "routed_queues": ()})
    flows, _ = flows_of(events)
    assert flows[10].end_to_end_ms == 5.5


def test_it_names_the_service_as_the_request_event_says():
    events = routed_call(10)
    events[0] = flow_keys.Event(**{**_fields(events[0]), "service": "tasks.add"})
    flows, _ = flows_of(events)
    assert flows[10].service == "tasks.add"


def _fields(event):
    return {name: getattr(event, name) for name in flow_keys.Event.__slots__}
