"""WARREN_MASKED_FIELDS masked on every way out, one test per surface.

One captured RPC request carries a `password` and an `Authorization` header
and a JSON body with `"api_key"` nested in a list; its reply completes a flow.
Each surface — pages, the JSON API, the body download, live events, replay
previews — shows the mask where the values were and never the values.
"""

import json

import orjson
import pytest

from tests.replay.helpers import capture_many, trace_event
from tracer.live import publish as live
from tracer.live import rows
from tracer.masking import MASK
from tracer.models import Flow, Message

SECRETS = ("hunter2-pw-8461", "Bearer tok-8461-xyz", "ak-8461-nested")
VHOST = "masking-surfaces"


@pytest.fixture
def captured(db):
    props = {
        "correlation_id": "corr-8461",
        "reply_to": "amq.gen-masking",
        "content_type": "application/json",
        "headers": {"password": SECRETS[0], "Authorization": SECRETS[1], "x-kept": "visible"},
    }
    body = orjson.dumps({"order": 7, "deep": {"list": [{"api_key": SECRETS[2], "n": 1}]}})
    request, reply = capture_many(
        [
            trace_event(VHOST, routing_key="rpc_masked", body=body, props=props),
            trace_event(
                VHOST,
                routing_key="amq.gen-masking",
                body=body,
                props={"correlation_id": "corr-8461", "headers": props["headers"]},
            ),
        ]
    )
    request.refresh_from_db()
    return request


def _clean(text, where):
    for secret in SECRETS:
        assert secret not in text, f"{where} shows {secret!r}"
    assert MASK in text, f"{where} shows no mask at all"


def test_pages_mask(viewer_client, captured):
    flow = Flow.objects.get(correlation_id="corr-8461")
    for path in (
        f"/messages/{captured.id}/",
        f"/messages/?vhost={VHOST}&q=order",
        f"/flows/{flow.id}/",
    ):
        page = viewer_client.get(path).content.decode()
        for secret in SECRETS:
            assert secret not in page, f"{path} shows {secret!r}"
    _clean(viewer_client.get(f"/messages/{captured.id}/").content.decode(), "message page")
    # A search for a masked value finds nothing.
    found = viewer_client.get(f"/messages/?vhost={VHOST}&q={SECRETS[2]}").content.decode()
    assert f"/messages/{captured.id}/" not in found


def test_the_api_masks(viewer_client, captured):
    flow = Flow.objects.get(correlation_id="corr-8461")
    one = viewer_client.get(f"/api/messages/{captured.id}").json()
    _clean(json.dumps(one), "GET /api/messages/<id>")
    assert one["properties"]["headers"]["x-kept"] == "visible"
    assert one["body_json"]["deep"]["list"][0]["api_key"] == MASK
    _clean(json.dumps(viewer_client.get(f"/api/messages?vhost={VHOST}").json()), "/api/messages")
    _clean(json.dumps(viewer_client.get(f"/api/flows/{flow.id}").json()), "/api/flows/<id>")
    assert viewer_client.get(f"/api/messages?q={SECRETS[2]}").json()["results"] == []


def test_the_body_download_masks(viewer_client, captured):
    response = viewer_client.get(f"/messages/{captured.id}/body")
    body = b"".join(response)
    assert response["Content-Disposition"].endswith('.json"')
    _clean(body.decode(), "the body download")
    assert orjson.loads(body)["deep"]["list"][0] == {"api_key": MASK, "n": 1}


def test_live_events_mask(captured):
    event = live.message_event(Message.objects.get(id=captured.id), "default")
    # What the consumer renders into the page for this event.
    html = rows.message_row(event)
    _clean(json.dumps(event, default=str), "the live event")
    assert all(secret not in str(html) for secret in SECRETS)
    flow = Flow.objects.get(correlation_id="corr-8461")
    assert all(s not in json.dumps(live.flow_event(flow, "default")) for s in SECRETS)


def test_replay_previews_mask(operator_client, captured):
    from replay import engine

    page = operator_client.get(f"/replays/new?message={captured.id}").content.decode()
    _clean(page, "the new replay form")
    created = operator_client.post(
        "/api/replays",
        json.dumps({"message_ids": [captured.id], "dry_run": True}),
        content_type="application/json",
    ).json()
    engine.run_job(created["id"])
    _clean(json.dumps(operator_client.get(f"/api/replays/{created['id']}").json()), "dry run API")
    _clean(operator_client.get(f"/replays/{created['id']}/").content.decode(), "dry run page")
    item = operator_client.get(f"/replays/{created['id']}/items/0/")
    if item.status_code == 404:
        item = operator_client.get(f"/replays/{created['id']}/items/1/")
    _clean(item.content.decode(), "the replay item page")
