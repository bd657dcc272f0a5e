"""Replay pages: choosing, the form's checks, the job page, the RPC diff, escaping."""

import json

import pytest

from console.models import AuditEntry
from replay import engine
from replay.models import ReplayItem, ReplayJob
from tests.replay.helpers import capture, capture_many, trace_event

pytestmark = pytest.mark.django_db
HOSTILE = "<script>alert('x')</script> \"q\" /% ü"

FORM = {
    "target": "original",
    "body_mode": "keep",
    "body_format": "text",
    "headers_mode": "keep",
    "keep_message_id": "keep",
    "keep_timestamp": "keep",
}


def test_it_shows_the_count_and_the_masked_message_before_sending(operator_client, broker):
    message = capture(
        broker.vhost,
        exchange=HOSTILE,
        routing_key="k",
        body=b'{"password": "hunter2", "n": 1}',
        props={"headers": {"token": "s3cret", "x-tenant": HOSTILE}},
    )

    response = operator_client.get(f"/replays/new?message={message.id}")

    page = response.content.decode()
    assert response.status_code == 200
    assert '<span class="value" id="replay-count">1</span>' in page
    assert "hunter2" not in page and "s3cret" not in page
    assert "********" in page
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "Start replay of 1 message" in page


def test_it_sends_the_original_value_behind_a_mask_left_in_an_edit(operator_client, broker):
    message = capture(
        broker.vhost,
        routing_key="k",
        body=b'{"password": "hunter2", "n": 1}',
        props={"headers": {"token": "s3cret", "x-tenant": "acme"}},
    )
    form = {
        **FORM,
        "body_mode": "replace",
        "body_format": "json",
        "body_text": '{"password": "********", "n": 2}',
        "headers_mode": "edit",
        "headers_text": '{"token": "********", "x-tenant": "globex"}',
        "keep_message_id": "drop",
    }

    response = operator_client.post(f"/replays/new?message={message.id}", form)

    assert response.status_code == 302
    job = ReplayJob.objects.get()
    assert response["Location"] == f"/replays/{job.id}/"
    assert json.loads(bytes(job.body)) == {"password": "hunter2", "n": 2}
    assert (job.headers, job.headers_replace) == ({"token": "s3cret", "x-tenant": "globex"}, True)
    assert (job.keep_message_id, job.keep_timestamp) == (False, True)
    entry = AuditEntry.objects.get(action="replay")
    assert (entry.username, entry.result) == ("otto-operator", "ok")
    assert f"job #{job.id}" in entry.detail and "message_id dropped" in entry.detail


def test_it_refuses_invalid_json_and_a_stray_mask(operator_client, broker):
    message = capture(broker.vhost, routing_key="k", body=b"plain")
    url = f"/replays/new?message={message.id}"

    bad_json = operator_client.post(
        url, {**FORM, "body_mode": "replace", "body_format": "json", "body_text": "{nope"}
    )
    bad_headers = operator_client.post(
        url, {**FORM, "headers_mode": "edit", "headers_text": '{"token": "********"}'}
    )

    assert bad_json.status_code == 400
    assert "The body is not valid JSON" in bad_json.content.decode()
    assert bad_headers.status_code == 400
    assert "stands for a masked value" in bad_headers.content.decode()
    assert ReplayJob.objects.count() == 0


def test_it_asks_to_type_the_count_above_the_threshold(operator_client, broker, settings):
    settings.WARREN_REPLAY_CONFIRM_ABOVE = 2
    capture_many([trace_event(broker.vhost, routing_key="q", body=b"%d" % n) for n in range(3)])
    url = f"/replays/new?vhost={broker.vhost}"

    shown = operator_client.get(url).content.decode()
    unconfirmed = operator_client.post(url, FORM)
    confirmed = operator_client.post(url, {**FORM, "confirm_count": "3"})

    assert "Second confirmation" in shown and "more than 2" in shown
    assert unconfirmed.status_code == 400
    assert "Type 3 to confirm" in unconfirmed.content.decode()
    assert confirmed.status_code == 302
    assert ReplayJob.objects.get().total == 3


def test_it_leaves_deliveries_out_of_a_filter_and_says_so(operator_client, broker):
    capture_many(
        [
            trace_event(broker.vhost, routing_key="q", body=b"1"),
            trace_event(broker.vhost, routing_key="q", body=b"1", event="deliver", queue="q"),
        ]
    )

    page = operator_client.get(f"/replays/new?vhost={broker.vhost}").content.decode()

    assert '<span class="value" id="replay-count">1</span>' in page
    assert "1 captured deliveries also match" in page


def test_it_warns_about_cut_bodies_and_wants_them_allowed(operator_client, broker):
    cut = capture(broker.vhost, routing_key="q", body=b"0123456789", limit=4)
    url = f"/replays/new?message={cut.id}"

    page = operator_client.get(url).content.decode()
    refused = operator_client.post(url, FORM)
    allowed = operator_client.post(url, {**FORM, "allow_truncated": "on"})

    assert "1 body was cut when captured" in page
    assert refused.status_code == 400
    assert "tick this to send them cut anyway" in refused.content.decode()
    assert allowed.status_code == 302
    assert ReplayJob.objects.get().allow_truncated is True


def test_it_offers_a_choice_when_nothing_is_chosen(operator_client):
    page = operator_client.get("/replays/new").content.decode()
    assert "Messages by id" in page and "Dead-letter redrive" in page
    missing = operator_client.get("/replays/new?message=424242").content.decode()
    assert "No captured message #424242" in missing


def test_it_shows_a_finished_job_with_its_counts_and_failures(viewer_client, operator, broker):
    from replay import jobs, spec
    from tests.replay.helpers import operator_request

    queue = broker.queue(exchange="orders", key="ok")
    good = capture(broker.vhost, exchange="orders", routing_key="ok", body=b"1")
    lost = capture(broker.vhost, exchange="orders", routing_key=HOSTILE, body=b"2")
    data = {"message_ids": [good.id, lost.id]}
    job = jobs.create_job(operator_request(operator), spec.from_api(data))
    engine.run_job(job.id)

    detail = viewer_client.get(f"/replays/{job.id}/").content.decode()
    listing = viewer_client.get("/replays/").content.decode()
    polled = viewer_client.get(f"/replays/{job.id}/progress?was=active", HTTP_HX_REQUEST="true")

    assert '<span class="pill ok" id="replay-status">done</span>' in detail
    assert '<progress id="replay-bar" max="2" value="2"' in detail
    assert '<dd id="replay-confirmed">1</dd>' in detail
    assert '<dd id="replay-failed">1</dd>' in detail
    assert "returned: 312 NO_ROUTE" in detail
    assert "&lt;script&gt;" in detail and "<script>alert" not in detail
    assert "Cancel</button>" not in detail  # finished, and a viewer anyway
    assert f'<a href="/replays/{job.id}/">{job.id}</a>' in listing
    assert polled["HX-Refresh"] == "true"
    assert broker.depth(queue) == 1


def test_it_cancels_a_queued_job_from_the_page(operator_client, broker):
    message = capture(broker.vhost, routing_key="q", body=b"x")
    operator_client.post(f"/replays/new?message={message.id}", FORM)
    job = ReplayJob.objects.get()

    response = operator_client.post(f"/replays/{job.id}/cancel", follow=True)

    job.refresh_from_db()
    assert (job.status, job.cancelled_by) == ("cancelled", "otto-operator")
    assert "Resume: send the 1 unconfirmed" in response.content.decode()
    assert AuditEntry.objects.filter(action="replay_cancel", result="ok").count() == 1
    assert engine.run_job(job.id) is None  # the task arriving late does nothing


def test_it_shows_the_reply_diff_escaped_and_masked(viewer_client, operator, broker):
    from replay import jobs, spec
    from tests.replay.helpers import operator_request

    request, reply = capture_many(
        [
            trace_event(
                broker.vhost,
                routing_key="svc",
                body=b'{"q": 1}',
                props={"correlation_id": "c", "reply_to": "amq.gen-r"},
            ),
            trace_event(
                broker.vhost,
                routing_key="amq.gen-r",
                body=b'{"answer": "<b>old</b>", "token": "tok-old-1"}',
                props={"correlation_id": "c"},
            ),
        ]
    )
    job = jobs.create_job(
        operator_request(operator),
        spec.from_api({"message_ids": [request.id], "await_reply": True, "dry_run": True}),
    )
    item = job.items.get()
    # What the engine records when the new answer arrives (see test_rpc for the real thing).
    ReplayItem.objects.filter(id=item.id).update(
        state="confirmed",
        reply_status="replied",
        reply_body=b'{"answer": "<script>new</script>", "token": "tok-new-2"}',
        latency_ms=4.2,
        changed=True,
    )
    ReplayJob.objects.filter(id=job.id).update(status="done")

    page = viewer_client.get(f"/replays/{job.id}/items/0/").content.decode()

    assert item.original_reply_id == reply.id
    assert (
        '<span class="diff-del">-   &quot;answer&quot;: &quot;&lt;b&gt;old&lt;/b&gt;&quot;,' in page
    )
    added = "&quot;answer&quot;: &quot;&lt;script&gt;new&lt;/script&gt;&quot;,"
    assert f'<span class="diff-add">+   {added}' in page
    # Values no CSRF token or session id can contain (those have no hyphen).
    assert "tok-old-1" not in page and "tok-new-2" not in page
    assert "4.20 ms" in page
    assert "answer changed" in page


def test_it_chooses_what_the_messages_search_shows_and_no_more(operator_client, broker):
    capture_many(
        [
            trace_event(broker.vhost, routing_key="q", body=b'{"note": "needle"}'),
            trace_event(broker.vhost, routing_key="q", body=b'{"password": "needle"}'),
            trace_event(broker.vhost, exchange="", routing_key="other", body=b"needle"),
        ]
    )
    base = f"/replays/new?vhost={broker.vhost}"

    searched = operator_client.get(f"{base}&q=needle&routing_key=q").content.decode()
    default_exchange = operator_client.get(f"{base}&exchange=amq.default").content.decode()
    recent = operator_client.get(f"{base}&since=15m").content.decode()

    # The body that matches only inside a masked field is not listed by the search: not chosen.
    assert '<span class="value" id="replay-count">1</span>' in searched
    assert '<span class="value" id="replay-count">3</span>' in default_exchange
    assert '<span class="value" id="replay-count">3</span>' in recent


def test_it_ticks_the_rpc_comparison_when_the_flow_page_asks(operator_client, broker):
    request, _ = capture_many(
        [
            trace_event(
                broker.vhost, routing_key="svc", props={"correlation_id": "c", "reply_to": "r"}
            ),
            trace_event(broker.vhost, routing_key="r", props={"correlation_id": "c"}),
        ]
    )

    page = operator_client.get(f"/replays/new?flow={request.flow_id}&await_reply=1")

    text = page.content.decode()
    assert f"the request of flow #{request.flow_id}" in text.lower()
    assert 'name="await_reply" id="id_await_reply" checked' in text


def test_it_reads_flow_with_other_search_parameters_as_a_filter(operator_client, broker):
    request, reply = capture_many(
        [
            trace_event(
                broker.vhost, routing_key="svc", props={"correlation_id": "c", "reply_to": "r"}
            ),
            trace_event(broker.vhost, routing_key="r", props={"correlation_id": "c"}),
        ]
    )
    url = f"/replays/new?flow={request.flow_id}&vhost={broker.vhost}&event=publish"

    text = operator_client.get(url).content.decode()

    assert '<span class="value" id="replay-count">2</span>' in text  # request and reply
