"""The sequence view: conversations found by correlation id and trace id, laid out."""

import secrets

import pytest
from django.urls import reverse

from tests.conftest import unique_name
from tests.live.events import event, rpc_call
from tracer.models import Flow
from tracer.store import storage
from tracer.times import now_us
from tracer.web import conversation


def _kinds(diagram):
    return [arrow.kind for arrow in diagram.arrows]


def _lanes(diagram):
    return [(lane.sub, lane.name) for lane in diagram.lanes]


@pytest.mark.django_db
def test_it_draws_an_rpc_call_as_request_and_reply():
    vhost = unique_name("seq")
    corr, call = rpc_call(vhost, latency_ms=10)
    storage.store_batch(call)
    flow = Flow.objects.get(correlation_id=corr)

    diagram = conversation.build(flow=flow.id)

    assert _lanes(diagram) == [
        ("client", "demo client"),
        ("exchange", "(default)"),
        ("queue", "rpc_queue"),
        ("server", "demo server"),
        ("queue", "amq.gen-reply"),
    ]
    assert _kinds(diagram) == ["request", "route", "deliver", "reply", "route", "deliver"]
    request, route, deliver, reply = diagram.arrows[:4]
    assert (request.source.name, request.target.name, request.label) == (
        "demo client",
        "(default)",
        "rpc_queue",
    )
    assert (deliver.source.name, deliver.target.name) == ("rpc_queue", "demo server")
    assert reply.leftward and reply.source.name == "demo server"
    assert [arrow.y for arrow in diagram.arrows] == sorted(arrow.y for arrow in diagram.arrows)
    assert diagram.arrows[0].offset_text == "+0.00 ms"
    assert diagram.duration_ms == pytest.approx(10.3)
    assert [f.id for f in diagram.flows] == [flow.id]


@pytest.mark.django_db
def test_it_follows_a_pipeline_across_hops_by_trace_id():
    """Pipes and filters: each hop a new correlation id, one W3C trace throughout."""
    vhost = unique_name("seq")
    trace_id = secrets.token_hex(16)
    hops = [
        ("order producer", "pipeline.validate"),
        ("filter validate", "pipeline.enrich"),
        ("filter enrich", "pipeline.archive"),
    ]
    start = now_us() - 1_000_000
    events = []
    for index, (connection, queue) in enumerate(hops):
        props = {
            "correlation_id": f"hop-{index}-{secrets.token_hex(4)}",
            "headers": {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        }
        at = start + index * 10_000
        events.append(event("publish", at, vhost, "", queue, props=props, connection=connection))
        consumer = hops[index + 1][0] if index + 1 < len(hops) else "archiver"
        events.append(
            event("deliver", at + 3_000, vhost, "", queue, props=props, connection=consumer)
        )
    unrelated = event("publish", start, vhost, "", "pipeline.validate", connection="someone")
    storage.store_batch([*events, unrelated])

    diagram = conversation.build(message=events[0].id)

    assert [m.id for m in diagram.messages] == [e.id for e in events]
    assert _kinds(diagram) == ["publish", "route", "deliver"] * 3
    assert _lanes(diagram) == [
        ("publisher", "order producer"),
        ("exchange", "(default)"),
        ("queue", "pipeline.validate"),
        ("service", "filter validate"),
        ("queue", "pipeline.enrich"),
        ("service", "filter enrich"),
        ("queue", "pipeline.archive"),
        ("consumer", "archiver"),
    ]
    assert diagram.trace_ids == [trace_id]
    by_trace = conversation.build(trace=trace_id.upper())
    assert [m.id for m in by_trace.messages] == [e.id for e in events]


@pytest.mark.django_db
def test_it_shows_direct_reply_to_and_unroutable_publishes():
    vhost = unique_name("seq")
    reply_to = "amq.rabbitmq.reply-to.g1h2AA5yZXBseQ"
    corr, call = rpc_call(vhost, reply_to=reply_to, latency_ms=4)
    call = call[:3]  # a direct reply is never delivered through a traced queue
    call[2].routed_queues_json = "[]"
    lost = event(
        "publish",
        call[0].captured_us + 1,
        vhost,
        "amq.direct",
        "nowhere",
        routed=[],
        props={"correlation_id": corr},
    )
    storage.store_batch([*call, lost])

    diagram = conversation.build(correlation_id=corr, vhost=vhost)

    assert _kinds(diagram) == [
        "request",
        "route",
        "publish",
        "unroutable",
        "deliver",
        "reply",
        "direct",
    ]
    direct = diagram.arrows[-1]
    assert (direct.source.name, direct.target.name) == ("(default)", "demo client")


@pytest.mark.django_db
def test_it_explains_what_it_cannot_draw():
    with pytest.raises(conversation.ConversationError, match="no flow 42"):
        conversation.build(flow=42)
    with pytest.raises(conversation.ConversationError, match="32 hexadecimal"):
        conversation.build(trace="not-a-trace")
    with pytest.raises(conversation.ConversationError, match="No captured events"):
        conversation.build(correlation_id="never-seen")


@pytest.mark.django_db
def test_it_escapes_hostile_names_in_the_drawing(viewer_client):
    vhost = unique_name("seq")
    hostile = '<script>alert("q")</script>'
    corr, call = rpc_call(vhost, routing_key=hostile, reply_to='reply "q" %2F ü')
    storage.store_batch(call)

    page = viewer_client.get(reverse("conversation"), {"correlation_id": corr})

    text = page.content.decode()
    assert page.status_code == 200
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&quot;q&quot;)&lt;/script&gt;" in text
    assert "reply &quot;q&quot; %2F ü" in text
    assert " style=" not in text
