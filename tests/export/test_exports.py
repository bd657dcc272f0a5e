"""GET /api/messages/export and /api/flows/export: streamed files with the list
endpoints' filters, masked as the API masks."""

import base64
import csv
import gzip
import io
import json
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.utils import timezone

from tests.export import stored
from tracer.models import Message
from tracer.web import exports

pytestmark = pytest.mark.django_db


def lines(response) -> list[dict]:
    assert response.status_code == 200, response.content
    assert response.streaming
    content = b"".join(response.streaming_content)
    return [json.loads(line) for line in content.splitlines()]


def test_it_streams_messages_as_json_lines_masked_with_their_bodies(viewer_client):
    now = timezone.now()
    secret = stored.message(
        "publish",
        now,
        vhost="export-a",
        routing_key="orders",
        properties={"headers": {"Token": "tok-123", "x-trace": "keep"}},
        body=b'{"password": "hunter2", "order": 7}',
    )
    older = stored.message("publish", now - timedelta(seconds=1), vhost="export-a", body=b"plain")
    stored.message("publish", now, vhost="export-b", body=b"elsewhere")
    response = viewer_client.get("/api/messages/export", {"vhost": "export-a"})
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].startswith('attachment; filename="warren-messages-')
    rows = lines(response)
    assert [row["id"] for row in rows] == [secret.id, older.id]  # newest first
    assert rows[0]["properties"]["headers"] == {"Token": "********", "x-trace": "keep"}
    body = base64.b64decode(rows[0]["body_base64"])
    assert json.loads(body) == {"password": "********", "order": 7}
    assert base64.b64decode(rows[1]["body_base64"]) == b"plain"
    raw = b"".join(viewer_client.get("/api/messages/export").streaming_content)
    assert b"hunter2" not in raw
    assert b"tok-123" not in raw
    # Without bodies, and the body search as the list does it: masked values never match.
    plain = lines(viewer_client.get("/api/messages/export", {"vhost": "export-a", "bodies": "0"}))
    assert "body_base64" not in plain[0]
    assert lines(viewer_client.get("/api/messages/export", {"q": "hunter2"})) == []
    found = lines(viewer_client.get("/api/messages/export", {"q": "order", "vhost": "export-a"}))
    assert [row["id"] for row in found] == [secret.id]


def test_it_keeps_a_compressed_body_compressed_and_masks_inside_it(viewer_client):
    stored.message(
        "publish",
        timezone.now(),
        vhost="export-gz",
        properties={"content_encoding": "gzip"},
        body=gzip.compress(b'{"secret": "s3", "n": 1}'),
    )
    (row,) = lines(viewer_client.get("/api/messages/export", {"vhost": "export-gz"}))
    body = gzip.decompress(base64.b64decode(row["body_base64"]))
    assert json.loads(body) == {"secret": "********", "n": 1}


def test_it_walks_every_row_across_chunks_even_at_one_capture_time(viewer_client, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK_ROWS", 7)
    at = timezone.now()
    Message.objects.bulk_create(
        Message(
            id=stored.new_id(),
            event="deliver",
            captured_at=at if n % 2 else at - timedelta(microseconds=n),
            vhost="export-many",
            queue="q",
        )
        for n in range(50)
    )
    response = viewer_client.get("/api/messages/export", {"vhost": "export-many", "format": "csv"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table[0] == list(exports.MESSAGE_COLUMNS)
    ids = [int(row[0]) for row in table[1:]]
    assert len(ids) == len(set(ids)) == 50


def test_it_exports_flows_with_the_lists_filters(viewer_client):
    base = timezone.now() - timedelta(minutes=3)
    wanted = stored.call(base, service="export-svc", queue_wait_ms=1.5, service_ms=20)
    stored.call(base, service="other-svc")
    response = viewer_client.get("/api/flows/export", {"service": "export-svc", "format": "csv"})
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [int(row["id"]) for row in table] == [wanted.id]
    assert table[0]["status"] == "complete"
    assert float(table[0]["queue_wait_ms"]) == pytest.approx(1.5)
    assert table[0]["requested_at"].endswith("Z")
    rows = lines(viewer_client.get("/api/flows/export", {"service": "export-svc"}))
    assert rows[0]["service_ms"] == pytest.approx(20)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"format": "xml"}, "'format' must be jsonl or csv"),
        ({"cursor": "abc"}, "Unknown parameter 'cursor'"),
        ({"format": "csv", "bodies": "1"}, "CSV carries no bodies"),
        ({"since": "yesterday"}, "'since' must be an ISO 8601 time"),
    ],
)
def test_it_refuses_what_it_cannot_export_in_words(viewer_client, query, words):
    response = viewer_client.get("/api/messages/export", query)
    assert response.status_code == 400
    assert words in response.json()["error"]


def test_it_needs_a_login(client):
    assert client.get("/api/flows/export").status_code == 401
    assert client.get("/api/messages/export").status_code == 401


def test_it_streams_under_asgi_a_chunk_at_a_time(viewer, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK_ROWS", 5)
    monkeypatch.setattr(exports, "FLUSH_BYTES", 1)
    at = timezone.now()
    for n in range(12):
        stored.message("deliver", at - timedelta(seconds=n), vhost="export-asgi", queue="q")

    async def fetch() -> tuple[bool, list[bytes]]:
        client = AsyncClient()
        await client.aforce_login(viewer)
        response = await client.get("/api/messages/export", {"vhost": "export-asgi", "bodies": "0"})
        assert response.status_code == 200
        return response.is_async, [chunk async for chunk in response.streaming_content]

    is_async, chunks = async_to_sync(fetch)()
    assert is_async  # served as an async stream, not gathered into a list first
    assert len(chunks) == 12  # one piece a row here, read as they are made
    assert len({json.loads(chunk)["id"] for chunk in chunks}) == 12
