"""tracer.store.storage: batches in, messages, flows and roll-ups out, in any order."""

import random

import pytest

from tests.tracer.frames import T0, S, frame, rpc_call
from tracer.models import Flow, LatencyBucket, Message, ServiceMinute
from tracer.store import storage
from tracer.times import from_us

pytestmark = pytest.mark.django_db

NOW = T0 + 10 * S


def store(events, now=NOW, **options):
    return storage.store_batch(events, now=now, timeout_s=30, **options)


def flow_summary(flow):
    return tuple(
        str(value)
        for value in (
            flow.correlation_id,
            flow.status,
            flow.service,
            flow.latency_ms,
            flow.queue_wait_ms,
            flow.service_ms,
            flow.end_to_end_ms,
            flow.replies,
            flow.redeliveries,
            flow.late,
            Message.objects.get(id=flow.request_id).captured_at if flow.request_id else None,
        )
    )


def test_it_stores_a_call_as_messages_and_one_complete_flow():
    corr, events = rpc_call(at=0)
    result = store(events)
    assert (result.received, result.stored) == (4, 4)
    messages = list(Message.objects.order_by("id"))
    assert [m.event for m in messages] == ["publish", "deliver", "publish", "deliver"]
    flow = Flow.objects.get()
    assert flow.id == messages[0].id == flow.request_id
    assert flow.reply_id == messages[2].id
    assert {m.flow_id for m in messages} == {flow.id}
    assert (flow.status, flow.pairing, flow.correlation_id) == ("complete", "correlation_id", corr)
    assert (flow.queue_wait_ms, flow.service_ms, flow.latency_ms, flow.end_to_end_ms) == (
        2.0,
        3.0,
        5.0,
        6.5,
    )
    assert flow.requested_at == from_us(T0)
    minute = ServiceMinute.objects.get()
    assert (minute.service, minute.calls, minute.answered, minute.timeouts) == (
        "rpc_queue",
        1,
        1,
        0,
    )
    assert minute.latency_sum_ms == 5.0
    assert LatencyBucket.objects.get().count == 1


def test_it_pairs_the_same_whatever_order_and_batches_the_events_arrive_in():
    calls = [rpc_call(at=i * 1000, work=1000 * (i + 1)) for i in range(6)]
    direct = rpc_call(at=500, reply_to="amq.rabbitmq.reply-to.tok.x==", deliver_reply=False)
    no_corr = [rpc_call(at=i * 50_000, corr="", reply_to="callback", work=7000) for i in range(3)]
    events = [e for _, evs in [*calls, direct, *no_corr] for e in evs]
    events.append(frame("publish", 5, routing_key="orders"))  # plain traffic

    store([*events])
    expected = sorted(flow_summary(f) for f in Flow.objects.all())
    expected_minutes = sorted(
        ServiceMinute.objects.values_list("calls", "answered", "latency_sum_ms")
    )
    assert len(expected) == 10
    assert Message.objects.filter(flow_id__isnull=True).count() == 1

    for seed in range(3):
        Message.objects.all().delete()
        Flow.objects.all().delete()
        ServiceMinute.objects.all().delete()
        LatencyBucket.objects.all().delete()
        shuffled = [_copy(e) for e in events]
        random.Random(seed).shuffle(shuffled)
        cut = sorted(random.Random(seed).sample(range(1, len(shuffled)), 4))
        for start, end in zip([0, *cut], [*cut, len(shuffled)], strict=True):
            store(shuffled[start:end])
        assert sorted(flow_summary(f) for f in Flow.objects.all()) == expected
        assert (
            sorted(ServiceMinute.objects.values_list("calls", "answered", "latency_sum_ms"))
            == expected_minutes
        )
        assert Message.objects.filter(flow_id__isnull=True).count() == 1
        assert sum(LatencyBucket.objects.values_list("count", flat=True)) == 10


def _copy(event):
    from tracer.tap.decoding import Captured

    fields = {name: getattr(event, name) for name in Captured.__slots__}
    fields.update(id=None, flow_id=None)
    return Captured(**fields)


def test_it_turns_an_orphan_into_a_flow_when_its_request_arrives():
    corr, events = rpc_call(at=0)
    store([events[0]])  # the reply queue becomes known
    other_corr, others = rpc_call(at=100)
    store([others[2], others[3]])
    orphan = Flow.objects.get(status="orphan")
    assert orphan.correlation_id == other_corr and orphan.id == orphan.reply_id
    store([others[0], others[1]])
    assert not Flow.objects.filter(status="orphan").exists()
    flow = Flow.objects.get(correlation_id=other_corr)
    assert flow.status == "complete" and flow.end_to_end_ms == 6.5
    assert set(
        Message.objects.filter(correlation_id=other_corr).values_list("flow_id", flat=True)
    ) == {flow.id}


def test_it_times_out_pending_flows_and_completes_them_late():
    corr, events = rpc_call(at=0)
    store([events[0], events[1]], now=T0 + S)
    assert Flow.objects.get().status == "pending"
    assert storage.sweep_timeouts(timeout_s=30, now=T0 + 29 * S) == 0
    assert storage.sweep_timeouts(timeout_s=30, now=T0 + 31 * S) == 1
    assert Flow.objects.get().status == "timeout"
    minute = ServiceMinute.objects.get()
    assert (minute.calls, minute.timeouts, minute.answered) == (1, 1, 0)
    late_reply = frame(
        "publish", 40 * S, routing_key="amq.gen-reply", props={"correlation_id": corr}
    )
    store([late_reply], now=T0 + 41 * S)
    flow = Flow.objects.get()
    assert (flow.status, flow.late, flow.latency_ms) == ("complete", True, 40_000.0)
    minute.refresh_from_db()
    # Still a timeout for statistics, and late: its 40 s are no latency figure.
    assert (minute.calls, minute.timeouts, minute.late, minute.answered) == (1, 1, 1, 0)
    assert (minute.latency_sum_ms, minute.latency_max_ms) == (0, 0)
    assert not LatencyBucket.objects.filter(count__gt=0).exists()


def test_it_counts_duplicate_replies_and_redeliveries():
    corr, events = rpc_call(at=0)
    props = {"correlation_id": corr, "reply_to": "amq.gen-reply"}
    events.append(
        frame("deliver", 4000, queue="rpc_queue", props=props, body=b'{"n": 30}', redelivered=True)
    )
    events.append(
        frame(
            "publish",
            9000,
            routing_key="amq.gen-reply",
            props={"correlation_id": corr},
            body=b"second",
        )
    )
    store(events)
    flow = Flow.objects.get()
    assert (flow.replies, flow.redeliveries) == (2, 1)
