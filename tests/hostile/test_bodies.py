"""Hostile bodies on every page and answer that shows a body: nothing breaks, nothing leaks.

Empty, binary, invalid UTF-8, 10 MB, recursion bombs (JSON nested hundreds to
a hundred thousand levels), gzip (shown decompressed and masked when that is
safe), a zip bomb and a cut or broken gzip stream: the message page, the JSON
API, the body download and the Messages search each answer quickly, escaped
and masked.
"""

import gzip
import time
import zlib

import orjson
import pytest

from tests.replay.helpers import capture
from tracer.masking import MASK
from tracer.web.serialize import INFLATE_LIMIT

SECRET = "gz-secret-4711"


def _nested(depth):
    return b"[" * depth + b'{"password": "' + SECRET.encode() + b'"}' + b"]" * depth


def _get(client, path):
    # The page is made in this thread: its CPU time, which other processes'
    # load does not stretch as it does the wall-clock time.
    started = time.thread_time()
    response = client.get(path)
    spent = time.thread_time() - started
    assert response.status_code == 200, f"{path}: {response.status_code}"
    assert spent < 3.0, f"{path} took {spent:.1f} s of CPU"
    return response


def _everywhere(client, message):
    page = _get(client, f"/messages/{message.id}/").content.decode()
    api = _get(client, f"/api/messages/{message.id}").json()
    download = b"".join(_get(client, f"/messages/{message.id}/body"))
    listing = _get(client, f"/messages/?vhost={message.vhost}").content.decode()
    return page, api, download, listing


BODIES = {
    "empty": b"",
    "binary": bytes(range(256)) * 4,
    "invalid utf-8": b"\xc3\x28\xa0\xa1<script>alert(1)</script>\xff",
    "nul bytes": b"\x00" * 64,
    "nested 300": _nested(300),
    "nested 1000": _nested(1000),
    "nested 100000": _nested(100_000),
    "object bomb": b'{"a":' * 900 + b'{"token": "' + SECRET.encode() + b'"}' + b"}" * 900,
}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(BODIES))
def test_it_shows_any_body_safely(viewer_client, kind):
    body = BODIES[kind]
    message = capture("hostile-bodies", body=body, props={"content_type": "application/json"})
    page, api, download, listing = _everywhere(viewer_client, message)
    assert api["body_size"] == len(body)
    assert orjson.loads(orjson.dumps(api))  # the API answer is well-formed JSON
    for shown in (page, orjson.dumps(api).decode(), download.decode("latin-1"), listing):
        assert SECRET not in shown, f"{kind}: the masked value leaked"
    for html in (page, listing):
        assert "<script>alert" not in html
    assert f"#{message.id}" in page


@pytest.mark.django_db
def test_it_keeps_ten_megabytes_bounded(viewer_client, settings):
    body = b"<script>" + b"x" * (10 * 1024 * 1024)
    message = capture("hostile-bodies", body=body, limit=settings.WARREN_BODY_LIMIT)
    page, api, download, _ = _everywhere(viewer_client, message)
    assert api["body_size"] == len(body) and api["body_truncated"] is True
    assert len(download) == settings.WARREN_BODY_LIMIT
    assert "&lt;script&gt;" in page and "<script>xxx" not in page
    assert f"{settings.WARREN_BODY_LIMIT} of {len(body)} bytes were kept" in page


@pytest.mark.django_db
def test_it_shows_a_gzip_body_decompressed_and_masked(viewer_client):
    document = {"order": 42, "city": "<b>Dayton</b>", "auth": {"api_key": SECRET}}
    body = gzip.compress(orjson.dumps(document))
    message = capture(
        "hostile-bodies",
        body=body,
        props={"content_type": "application/json", "content_encoding": "gzip"},
    )
    page, api, download, _ = _everywhere(viewer_client, message)
    assert "decompressed from gzip" in page
    assert "&lt;b&gt;Dayton&lt;/b&gt;" in page and MASK in page
    assert orjson.loads(download) == {
        "order": 42,
        "city": "<b>Dayton</b>",
        "auth": {"api_key": MASK},
    }
    assert SECRET not in page and SECRET.encode() not in download
    assert api["body_base64"]  # the API still gives the stored bytes as they are


@pytest.mark.django_db
def test_it_keeps_a_zip_bomb_compressed(viewer_client):
    bomb = gzip.compress(b"\x00" * (50 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 65536
    message = capture("hostile-bodies", body=bomb, props={"content_encoding": "gzip"})
    page, _, download, _ = _everywhere(viewer_client, message)
    assert f"grows past {INFLATE_LIMIT:,} bytes" in page
    assert download == bomb


@pytest.mark.django_db
def test_it_shows_the_beginning_of_a_cut_gzip_body_and_explains_a_broken_one(viewer_client):
    text = b"".join(b"line %06d of a long gzip log\n" % n for n in range(20_000))
    cut = capture(
        "hostile-bodies",
        body=gzip.compress(text),
        props={"content_encoding": "gzip"},
        limit=4096,
    )
    page = _get(viewer_client, f"/messages/{cut.id}/").content.decode()
    assert "the stored body was cut" in page and "line 000000 of a long gzip log" in page
    broken = capture(
        "hostile-bodies", body=b"\x1f\x8bnot gzip at all", props={"content_encoding": "gzip"}
    )
    page = _get(viewer_client, f"/messages/{broken.id}/").content.decode()
    assert "does not decompress" in page
    deflated = capture(
        "hostile-bodies",
        body=zlib.compress(b'{"token": "' + SECRET.encode() + b'"}'),
        props={"content_encoding": "deflate"},
    )
    page = _get(viewer_client, f"/messages/{deflated.id}/").content.decode()
    assert "decompressed from deflate" in page and SECRET not in page
