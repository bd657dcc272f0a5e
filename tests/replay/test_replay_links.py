"""Replay's rough edges: volatile reply fields left out by default, the captured copy
of what a replay sent, audit entries leading to their job, per-row selection."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from console.models import AuditEntry
from replay import engine, jobs, rpc, spec
from tests.replay.helpers import capture, operator_request
from tracer.tap.decoding import REPLAY_HEADER
from tracer.times import to_us

pytestmark = pytest.mark.django_db

CAPTURED = {
    "n": 20,
    "fibonacci": 6765,
    "reply_to": "amq.gen-captured",
    "timestamp": 1700000000,
    "answered_at": "2026-01-01T10:00:00Z",
    "computed_in_ms": 0.4,
    "message_id": "m-1",
    "correlation_id": "c-1",
}
NOW = {
    **CAPTURED,
    "reply_to": "amq.gen-warren",
    "timestamp": 1800000000,
    "answered_at": "2026-12-02T08:00:00Z",
    "computed_in_ms": 2.7,
    "message_id": "m-2",
    "correlation_id": "c-2",
}


def _body(value):
    return json.dumps(value).encode()


def test_it_leaves_volatile_fields_out_of_an_rpc_comparison_by_default():
    chosen = spec.from_api({"message_ids": [1], "await_reply": True})
    assert chosen.ignore_fields == spec.VOLATILE_FIELDS
    assert rpc.changed(_body(CAPTURED), _body(NOW), chosen.ignore_fields) is False
    # a real change still shows, and only it
    wrong = {**NOW, "fibonacci": 6766}
    assert rpc.changed(_body(CAPTURED), _body(wrong), chosen.ignore_fields) is True
    lines = rpc.diff_lines(_body(CAPTURED), _body(wrong), chosen.ignore_fields)
    assert [text.strip() for kind, text in lines if kind in ("add", "del")] == [
        '"fibonacci": 6765,',
        '"fibonacci": 6766,',
    ]
    # an operator who wants every field compared says so
    every = spec.from_api({"message_ids": [1], "await_reply": True, "ignore_fields": []})
    assert rpc.changed(_body(CAPTURED), _body(NOW), every.ignore_fields) is True


def test_it_offers_the_volatile_fields_in_the_form_to_edit(operator_client, broker):
    message = capture(
        broker.vhost,
        routing_key="rpc",
        body=b'{"n": 1}',
        props={"reply_to": "amq.gen-client", "correlation_id": "c-7"},
    )
    page = operator_client.get(f"{reverse('replay_new')}?message={message.id}").content.decode()
    assert 'value="reply_to, timestamp, *_at, *_ms, message_id, correlation_id' in page


def test_it_links_a_finished_replay_to_the_captured_copy_of_what_it_sent(
    operator, operator_client, broker
):
    queue = broker.queue()
    original = capture(broker.vhost, routing_key=queue, body=b'{"order": 7}')
    older_copy = capture(
        broker.vhost,
        routing_key=queue,
        body=b'{"order": 7}',
        props={"headers": {REPLAY_HEADER: original.id, "x-warren-replay-count": 1}},
        at_us=to_us(original.captured_at) + 1_000,
    )  # a copy from an earlier replay of the same message
    job = jobs.create_job(operator_request(operator), spec.from_api({"message_ids": [original.id]}))
    engine.run_job(job.id)
    item = job.items.get()
    assert item.published and item.sent_at is not None
    # what the tap captures of the replayed message: the original's id in its header
    copy = capture(
        broker.vhost,
        routing_key=queue,
        body=b'{"order": 7}',
        props={"headers": {REPLAY_HEADER: original.id, "x-warren-replay-count": 2}},
        at_us=to_us(item.sent_at) + 3_000,
    )
    assert copy.replay_of == original.id

    page = operator_client.get(reverse("replay", args=[job.id])).content.decode()
    assert "<th>Captured copy</th>" in page
    assert f'href="{reverse("message", args=[copy.id])}"' in page
    assert f'href="{reverse("message", args=[older_copy.id])}"' not in page
    item_page = operator_client.get(reverse("replay_item", args=[job.id, 0])).content.decode()
    assert f'<a href="{reverse("message", args=[copy.id])}">#{copy.id}</a>' in item_page


def test_it_says_when_the_tap_did_not_capture_the_copy(operator, operator_client, broker):
    queue = broker.queue()
    original = capture(broker.vhost, routing_key=queue, body=b"x")
    job = jobs.create_job(operator_request(operator), spec.from_api({"message_ids": [original.id]}))
    engine.run_job(job.id)
    page = operator_client.get(reverse("replay", args=[job.id])).content.decode()
    assert "not captured" in page


def test_it_links_audit_entries_to_their_replay_job(operator, operator_client, broker):
    message = capture(broker.vhost, routing_key="q", body=b"x")
    job = jobs.create_job(
        operator_request(operator),
        spec.from_api({"message_ids": [message.id], "dry_run": True}),
    )
    AuditEntry.record(operator, "login", target="not a replay #99")
    page = operator_client.get(reverse("audit_log")).content.decode()
    job_url = reverse("replay", args=[job.id])
    assert page.count(f'href="{job_url}"') == 1
    assert reverse("replay", args=[99]) not in page


def test_it_lets_an_operator_pick_messages_for_a_replay(operator_client, viewer, broker):
    first = capture(broker.vhost, routing_key="orders", body=b"1")
    second = capture(broker.vhost, routing_key="orders", body=b"2")
    listing = operator_client.get(f"{reverse('messages')}?vhost={broker.vhost}").content.decode()
    assert '<form id="replay-selected"' in listing and "Replay selected…" in listing
    for message in (first, second):
        assert (
            f'<input type="checkbox" name="message" value="{message.id}" form="replay-selected" '
            f'aria-label="Choose message #{message.id} for a replay">'
        ) in listing
    chosen = operator_client.get(
        reverse("replay_new"), {"message": [first.id, second.id]}
    ).content.decode()
    assert "2 chosen messages" in chosen
    viewer_client = Client()
    viewer_client.force_login(viewer)
    seen_by_viewer = viewer_client.get(f"{reverse('messages')}?vhost={broker.vhost}")
    assert "replay-selected" not in seen_by_viewer.content.decode()
    assert 'name="message"' not in seen_by_viewer.content.decode()
