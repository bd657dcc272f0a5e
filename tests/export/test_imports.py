"""POST /api/imports and the Imports page: a capture file (the messages export in
JSON Lines with bodies) back in, checked whole first, ready to replay."""

import base64
import json
import uuid
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from console.models import ApiToken, AuditEntry
from replay import engine
from tests.export import stored
from tests.replay.helpers import Broker
from tests.replay.worker import forget_queue
from tracer.export.models import Import, ImportedMessage
from tracer.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_replay_queue(settings):
    """Replay jobs this test starts go to a Celery queue nobody else reads."""
    queue = f"warren-import-test-{uuid.uuid4().hex[:10]}"
    settings.WARREN_REPLAY_QUEUE = queue
    yield
    forget_queue(queue)


def export_file(client, vhost: str) -> bytes:
    response = client.get("/api/messages/export", {"vhost": vhost, "format": "jsonl"})
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def post_capture(client, token: str, content: bytes):
    return client.generic(
        "POST",
        "/api/imports",
        content,
        content_type="application/x-ndjson",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_X_FILENAME="orders.jsonl",
    )


def test_it_imports_an_export_and_replays_it_into_another_broker_vhost(
    operator, scratch_vhost, private_replay_queue, client
):
    source = f"import-src-{uuid.uuid4().hex[:6]}"
    start = timezone.now() - timedelta(days=30)  # older than the retention: times are shifted
    bodies = [b'{"n": 1}', b'{"n": 2, "password": "p4ss"}', b"\x00\x01binary"]
    for n, body in enumerate(bodies):
        stored.message(
            "publish",
            start + timedelta(milliseconds=250 * n),
            vhost=source,
            exchange="orders",
            routing_key=f"order.{n}",
            properties={"content_type": "application/json", "headers": {"x-n": n}},
            body=body,
        )
    token = ApiToken.issue(operator)
    capture = export_file(client.__class__(HTTP_AUTHORIZATION=f"Bearer {token}"), source)
    originals = [json.loads(line)["id"] for line in capture.splitlines()]

    answer = post_capture(client, token, capture)
    assert answer.status_code == 201, answer.content
    data = answer.json()
    assert data["messages"] == 3
    assert data["vhosts"] == [source]
    assert data["replay"]["path"] == "/api/replays"
    ids = data["message_ids"]
    imported = list(Message.objects.filter(id__in=ids).order_by("captured_at"))
    assert [m.body for m in imported] == [bodies[0], b'{"n":2,"password":"********"}', bodies[2]]
    assert [m.routing_key for m in imported] == ["order.0", "order.1", "order.2"]
    assert all(m.flow_id is None and m.vhost == source for m in imported)
    # The timeline is shifted to now, its spacing kept.
    assert timezone.now() - imported[-1].captured_at < timedelta(minutes=1)
    gaps = [(b.captured_at - a.captured_at) for a, b in zip(imported, imported[1:], strict=False)]
    assert gaps == [timedelta(milliseconds=250)] * 2
    links = dict(ImportedMessage.objects.values_list("message_id", "original_id"))
    assert sorted(links[i] for i in ids) == sorted(originals)
    assert AuditEntry.objects.filter(action="import", result=AuditEntry.OK).count() == 1

    # Ready to replay: into a queue of another vhost, through the real broker.
    broker = Broker(scratch_vhost)
    try:
        queue = broker.queue()
        job = client.post(
            "/api/replays",
            {"message_ids": ids, "vhost": scratch_vhost, "exchange": "", "routing_key": queue},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert job.status_code == 202, job.content
        done = engine.run_job(job.json()["id"])
        assert (done.status, done.confirmed) == ("done", 3)
        broker.wait_depth(queue, 3)
        received = broker.take(queue)
        assert [body for _, body in received] == [m.body for m in imported]
        assert received[0][0].headers["x-n"] == 0
    finally:
        broker.close()


def test_it_refuses_a_file_with_a_bad_line_and_stores_nothing(operator, client):
    token = ApiToken.issue(operator)
    good = {
        "event": "publish",
        "captured_at": "2026-01-01T00:00:00.000001Z",
        "vhost": "/",
        "body_base64": base64.b64encode(b"ok").decode(),
    }
    no_body = {key: value for key, value in good.items() if key != "body_base64"}
    content = b"\n".join(
        [
            json.dumps(good).encode(),
            b"{not json",
            json.dumps(no_body).encode(),
            json.dumps({**good, "event": "ack"}).encode(),
            json.dumps({**good, "captured_at": "yesterday"}).encode(),
        ]
    )
    before = Message.objects.count()
    answer = post_capture(client, token, content)
    assert answer.status_code == 400
    errors = answer.json()["errors"]
    assert errors == [
        "line 2: not JSON",
        "line 3: no 'body_base64': export with bodies (format=jsonl, bodies=1)",
        "line 4: 'event' must be publish or deliver",
        "line 5: 'captured_at' must be an ISO 8601 time with its zone, as exports write it",
    ]
    assert answer.json()["error"].startswith("Nothing imported: ")
    assert Message.objects.count() == before
    assert Import.objects.count() == 0
    assert AuditEntry.objects.filter(action="import", result=AuditEntry.FAILED).count() == 1
    empty = post_capture(client, token, b"\n\n")
    assert empty.status_code == 400
    assert "holds no messages" in empty.json()["error"]


def test_it_lets_only_an_operator_import(viewer, client):
    token = ApiToken.issue(viewer)
    assert post_capture(client, token, b"{}").status_code == 403
    assert (
        client.post("/api/imports", b"{}", content_type="application/x-ndjson").status_code == 401
    )


def test_the_page_imports_a_file_and_offers_its_replay(operator_client, viewer):
    stored.message("publish", timezone.now(), vhost="import-page", routing_key="k", body=b"hello")
    capture = export_file(operator_client, "import-page")
    upload = SimpleUploadedFile("capture.jsonl", capture, content_type="application/x-ndjson")
    response = operator_client.post("/imports/upload", {"file": upload}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Imported 1 message from capture.jsonl into import-page." in page
    (link,) = ImportedMessage.objects.values_list("message_id", flat=True)
    assert f"/replays/new?message={link}" in page

    bad = SimpleUploadedFile("bad.jsonl", b"[1, 2]\n", content_type="application/x-ndjson")
    refused = operator_client.post("/imports/upload", {"file": bad})
    assert refused.status_code == 400
    assert "line 1: a line must be a JSON object" in refused.content.decode()

    viewer_client = Client()
    viewer_client.force_login(viewer)
    seen = viewer_client.get("/imports/")
    assert seen.status_code == 200
    assert "capture.jsonl" in seen.content.decode()
    assert "Import a capture file" not in seen.content.decode()  # the form is an operator's
    upload = SimpleUploadedFile("capture.jsonl", capture)
    assert viewer_client.post("/imports/upload", {"file": upload}).status_code == 403
