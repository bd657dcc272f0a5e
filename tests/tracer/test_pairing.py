"""tracer.store.pairing: the Pairing rules of docs/architecture.md, in any arrival order."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.store import flow_keys, pairing
from tracer.store.flow_keys import DELIVER, PUBLISH, Event

S = 1_000_000  # microseconds in a second
T0 = 1_700_000_000 * S


def publish(id, at, **fields):
    return Event(id=id, kind=PUBLISH, at=T0 + at, vhost="v", **fields)


def deliver(id, at, **fields):
    return Event(id=id, kind=DELIVER, at=T0 + at, vhost="v", **fields)


def rpc(base, at=0, corr="c1", reply_to="amq.gen-A", service_queue="rpc_queue", fp=None):
    """The four events of one call: requested, delivered, replied, reply delivered."""
    fp = fp or base
    return [
        publish(
            base,
            at,
            routing_key=service_queue,
            correlation_id=corr,
            reply_to=reply_to,
            fingerprint=fp,
        ),
        deliver(
            base + 1,
            at + 2_000,
            routing_key=service_queue,
            queue=service_queue,
            correlation_id=corr,
            reply_to=reply_to,
            fingerprint=fp,
        ),
        publish(
            base + 2, at + 5_000, routing_key=reply_to, correlation_id=corr, fingerprint=fp + 100
        ),
        deliver(
            base + 3,
            at + 6_500,
            routing_key=reply_to,
            queue=reply_to,
            correlation_id=corr,
            fingerprint=fp + 100,
        ),
    ]


def flows_of(events, now=T0 + 3600 * S, timeout=30, known=frozenset()):
    flows, flow_of = pairing.pair(events, known_reply_queues=known, timeout_s=timeout, now_us=now)
    return flows, flow_of


def test_it_pairs_a_call_with_its_four_events_and_times():
    flows, flow_of = flows_of(rpc(10))
    assert list(flows) == [10]
    flow = flows[10]
    assert flow.status == "complete"
    assert flow.pairing == "correlation_id"
    assert flow.service == "rpc_queue"
    assert (flow.request_id, flow.reply_id, flow.replies) == (10, 12, 1)
    assert flow.queue_wait_ms == 2.0
    assert flow.service_ms == 3.0
    assert flow.latency_ms == 5.0
    assert flow.end_to_end_ms == 6.5
    assert flow_of == {10: 10, 11: 10, 12: 10, 13: 10}


def test_it_pairs_a_reply_stored_before_its_request():
    events = rpc(10)
    flows, _ = flows_of(list(reversed(events)))
    assert flows[10].status == "complete"
    assert flows[10].end_to_end_ms == 6.5


def test_it_names_the_service_by_exchange_and_routing_key():
    events = [
        publish(
            1,
            0,
            exchange="amq.topic",
            routing_key="weather.ohio",
            correlation_id="w",
            reply_to="amq.gen-W",
        ),
    ]
    flows, _ = flows_of(events, now=T0 + 1)
    assert flows[1].service == "amq.topic / weather.ohio"
    assert flows[1].status == "pending"


def test_it_completes_direct_reply_to_without_a_reply_delivery():
    token = "amq.rabbitmq.reply-to.g1h2AA1yZXBseUA5MjQ4ODg0AAAHhQAAAABrBkS7.j5mHH/+ABg=="
    events = rpc(20, reply_to=token)[:3]
    flows, _ = flows_of(events)
    flow = flows[20]
    assert flow.status == "complete"
    assert flow.reply_delivered_at is None and flow.end_to_end_ms is None
    assert flow.latency_ms == 5.0


def test_it_pairs_by_reply_to_without_a_correlation_id_oldest_first():
    events = [
        publish(1, 0, routing_key="compute", reply_to="callback"),
        publish(2, 1_000, routing_key="compute", reply_to="callback"),
        publish(3, 4_000, routing_key="callback"),
        publish(4, 9_000, routing_key="callback"),
    ]
    flows, flow_of = flows_of(events)
    assert flows[1].pairing == "reply_to" and flows[1].reply_id == 3
    assert flows[2].reply_id == 4
    assert flows[2].latency_ms == 8.0
    assert flow_of[3] == 1 and flow_of[4] == 2


def test_it_lets_a_timed_out_request_without_correlation_id_not_steal_replies():
    events = [
        publish(1, 0, routing_key="compute", reply_to="callback"),  # never answered
        publish(2, 60 * S, routing_key="compute", reply_to="callback"),
        publish(3, 60 * S + 4_000, routing_key="callback"),
    ]
    flows, _ = flows_of(events)
    assert flows[2].reply_id == 3
    assert flows[1].status == "timeout"


def test_it_accepts_a_reply_through_another_exchange():
    events = [
        publish(1, 0, routing_key="rpc", correlation_id="x", reply_to="answers"),
        publish(2, 3_000, exchange="replies.direct", routing_key="answers", correlation_id="x"),
    ]
    flows, _ = flows_of(events)
    assert flows[1].status == "complete" and flows[1].reply_id == 2


def test_it_counts_duplicate_replies_and_keeps_the_first():
    events = [
        publish(
            1, 0, exchange="amq.topic", routing_key="sports.ohio", correlation_id="s", reply_to="cb"
        ),
        deliver(
            2,
            1_000,
            exchange="amq.topic",
            routing_key="sports.ohio",
            queue="ohio",
            correlation_id="s",
            reply_to="cb",
        ),
        deliver(
            3,
            1_100,
            exchange="amq.topic",
            routing_key="sports.ohio",
            queue="sports",
            correlation_id="s",
            reply_to="cb",
        ),
        publish(4, 7_000, routing_key="cb", correlation_id="s"),
        publish(5, 4_000, routing_key="cb", correlation_id="s"),
    ]
    flows, flow_of = flows_of(events)
    assert flows[1].replies == 2
    assert flows[1].reply_id == 5
    assert flows[1].latency_ms == 4.0
    assert flow_of[4] == 1


def test_it_counts_redeliveries_and_times_the_delivery_that_answered():
    events = [
        publish(1, 0, routing_key="rpc", correlation_id="r", reply_to="cb", fingerprint=7),
        deliver(
            2,
            1_000,
            routing_key="rpc",
            queue="rpc",
            correlation_id="r",
            reply_to="cb",
            fingerprint=7,
        ),
        deliver(
            3,
            50_000,
            routing_key="rpc",
            queue="rpc",
            correlation_id="r",
            reply_to="cb",
            fingerprint=7,
            redelivered=True,
        ),
        publish(4, 53_000, routing_key="cb", correlation_id="r"),
    ]
    flows, _ = flows_of(events)
    flow = flows[1]
    assert flow.redeliveries == 1
    assert flow.request_delivered_at == T0 + 50_000
    assert (flow.queue_wait_ms, flow.service_ms) == (50.0, 3.0)


def test_it_times_out_then_completes_late():
    request = publish(1, 0, routing_key="rpc", correlation_id="t", reply_to="cb")
    flows, _ = flows_of([request], now=T0 + 31 * S)
    assert flows[1].status == "timeout"
    flows, _ = flows_of([request], now=T0 + 29 * S)
    assert flows[1].status == "pending"
    late = publish(2, 40 * S, routing_key="cb", correlation_id="t")
    flows, _ = flows_of([request, late], now=T0 + 41 * S)
    assert flows[1].status == "complete" and flows[1].late is True
    assert flows[1].latency_ms == 40_000.0


def test_it_makes_an_orphan_of_a_reply_to_a_known_reply_queue_only():
    reply = publish(9, 0, routing_key="cb", correlation_id="nobody")
    assert flows_of([reply])[0] == {}
    flows, flow_of = flows_of([reply], known=frozenset({("v", "cb")}))
    assert flows[9].status == "orphan" and flows[9].reply_id == 9
    assert flow_of[9] == 9


def test_it_ignores_plain_messages():
    events = [
        publish(1, 0, routing_key="orders"),
        deliver(2, 10, routing_key="orders", queue="orders"),
    ]
    flows, flow_of = flows_of(events, known=frozenset({("v", "cb")}))
    assert flows == {} and flow_of == {1: None, 2: None}


def test_it_marks_backlog_flows():
    events = rpc(10)
    delivered = events[1]
    events[1] = Event(**{**_fields(delivered), "backlog": True})
    flows, _ = flows_of(events)
    assert flows[10].backlog is True
    assert flows_of(rpc(10))[0][10].backlog is False


# --- order independence (hypothesis) --------------------------------------

REPLY_QUEUES = ["amq.gen-A", "amq.gen-B", "amq.rabbitmq.reply-to.tok1", "callback"]
KNOWN = frozenset(("v", queue) for queue in REPLY_QUEUES)

call = st.fixed_dictionaries(
    {
        "corr": st.one_of(st.just(""), st.sampled_from(["c1", "c2", "c3", "c4", "c5"])),
        "reply_to": st.sampled_from(REPLY_QUEUES),
        "service": st.sampled_from(["rpc_queue", "compute"]),
        "start": st.integers(0, 40 * S),
        "deliveries": st.lists(st.booleans(), max_size=2),  # redelivered flags
        "replies": st.lists(st.integers(1_000, 45 * S), max_size=2),  # reply delays
        "reply_delivered": st.booleans(),
        # the reply goes through a framework's exchange, by key, to a queue of another name
        "routed_by_key": st.booleans(),
    }
)


def scenario_events(calls, extra_replies):
    events, next_id = [], 1
    for index, c in enumerate(calls):
        fp = 1000 + index
        common = dict(correlation_id=c["corr"], reply_to=c["reply_to"], fingerprint=fp)
        events.append(publish(next_id, c["start"], routing_key=c["service"], **common))
        next_id += 1
        for k, redelivered in enumerate(c["deliveries"]):
            events.append(
                deliver(
                    next_id,
                    c["start"] + 500 + k * 700,
                    routing_key=c["service"],
                    queue=c["service"],
                    redelivered=redelivered,
                    **common,
                )
            )
            next_id += 1
        for k, delay in enumerate(c["replies"]):
            at = c["start"] + delay
            rfp = 5000 + index * 10 + k
            direct = flow_keys.is_direct_reply_to(c["reply_to"])
            by_key = c["routed_by_key"] and not direct
            queue = f"{c['reply_to']}.bound" if by_key else c["reply_to"]
            events.append(
                publish(
                    next_id,
                    at,
                    exchange="framework" if by_key else "",
                    routing_key=c["reply_to"],
                    correlation_id=c["corr"],
                    fingerprint=rfp,
                    routed_queues=() if direct else (queue,),
                )
            )
            next_id += 1
            if c["reply_delivered"] and not direct:
                events.append(
                    deliver(
                        next_id,
                        at + 300,
                        exchange="framework" if by_key else "",
                        routing_key=c["reply_to"],
                        queue=queue,
                        correlation_id=c["corr"],
                        fingerprint=rfp,
                    )
                )
                next_id += 1
    for queue, corr, at in extra_replies:
        events.append(publish(next_id, at, routing_key=queue, correlation_id=corr))
        next_id += 1
    # Plain traffic that must stay out of every flow.
    events.append(publish(next_id, 7, routing_key="orders"))
    events.append(deliver(next_id + 1, 9, routing_key="orders", queue="orders"))
    return events


class MemoryStore:
    """What storage does, in memory: load the touched groups, recompute, write back."""

    def __init__(self, now, timeout=30):
        self.events = {}
        self.flows = {}
        self.now = now
        self.timeout = timeout

    def store(self, batch):
        keys = flow_keys.keys_of(batch)
        loaded = [e for e in self.events.values() if set(flow_keys.group_keys(e)) & keys]
        request_ids = {e.id for e in loaded}
        loaded += [e for e in self.events.values() if e.flow_id in request_ids]
        changes = pairing.recompute(
            loaded, batch, keys, known_reply_queues=KNOWN, timeout_s=self.timeout, now_us=self.now
        )
        for event in batch:
            self.events[event.id] = event
        for flow_id in changes.delete_flow_ids:
            self.flows.pop(flow_id, None)
        self.flows.update(changes.flows)
        for event_id, flow_id in changes.flow_of.items():
            event = self.events[event_id]
            self.events[event_id] = Event(**{**_fields(event), "flow_id": flow_id})


def _fields(event):
    return {name: getattr(event, name) for name in Event.__slots__}


@settings(max_examples=150, deadline=None)
@given(
    calls=st.lists(call, min_size=1, max_size=8),
    extra=st.lists(
        st.tuples(
            st.sampled_from(REPLY_QUEUES), st.sampled_from(["", "zz"]), st.integers(0, 50 * S)
        ),
        max_size=2,
    ),
    seed=st.integers(0, 2**32),
    batch_count=st.integers(1, 6),
)
def test_it_finds_the_same_flows_whatever_the_arrival_order(calls, extra, seed, batch_count):
    events = scenario_events(calls, extra)
    now = T0 + 60 * S
    expected, expected_flow_of = pairing.pair(
        events, known_reply_queues=KNOWN, timeout_s=30, now_us=now
    )
    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    again, _ = pairing.pair(shuffled, known_reply_queues=KNOWN, timeout_s=30, now_us=now)
    assert again == expected

    store = MemoryStore(now)
    cuts = sorted(
        random.Random(seed + 1).sample(range(1, len(shuffled) + 1), min(batch_count, len(shuffled)))
    )
    start = 0
    for cut in cuts:
        store.store(shuffled[start:cut])
        start = cut
    store.store(shuffled[start:])
    assert store.flows == expected
    stored_flow_of = {e.id: e.flow_id for e in store.events.values()}
    assert stored_flow_of == {e.id: expected_flow_of.get(e.id) for e in events}
    # Every request is one flow; every flow's members point back at it.
    assert {e.id for e in events if e.kind == PUBLISH and e.reply_to} <= set(expected)
