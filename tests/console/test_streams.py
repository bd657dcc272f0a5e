"""Browsing a stream queue against the real broker: from first, an offset, a time, page by
page, shown as a peek shows messages, and nothing taken away."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from console import streams
from tests.console.helpers import publish, wait_for_messages, wait_for_stats

STREAM = "events.stream"


@pytest.fixture
def stream_vhost(mgmt, scratch_vhost):
    mgmt.declare_queue(scratch_vhost, STREAM, arguments={"x-queue-type": "stream"})
    publish(
        mgmt,
        scratch_vhost,
        STREAM,
        count=30,
        body="event-",
        properties={"headers": {"source": "test"}, "content_type": "text/plain"},
    )
    wait_for_messages(mgmt, scratch_vhost, STREAM, 30)
    return scratch_vhost


def _browse(client, vhost, status=200, partial=True, **params):
    headers = {"HX-Request": "true"} if partial else {}
    response = client.get(reverse("queue_stream", args=[vhost, STREAM]), params, headers=headers)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


def _offsets(html):
    return [int(n) for n in re.findall(r"<strong>offset (\d+)</strong>", html)]


def test_it_reads_the_first_page_and_pages_on_by_offset(viewer_client, stream_vhost):
    page = _browse(viewer_client, stream_vhost, **{"from": "first", "count": "10"})
    assert _offsets(page) == list(range(10))
    assert "event-0" in page and "event-9" in page and "event-10" not in page
    assert "10 messages from the first message kept" in page
    assert "source" in page and "text/plain" in page  # headers and properties, as a peek
    assert "x-stream-offset" not in page.split("data-stream-summary", 1)[1]  # shown as the offset
    link = re.search(r'href="([^"]+)#stream"', page).group(1).replace("&amp;", "&")
    assert "offset=10" in link
    second = viewer_client.get(link, headers={"HX-Request": "true"}).content.decode()
    assert _offsets(second) == list(range(10, 20))


def test_it_reads_from_an_offset_to_the_end_and_says_so(viewer_client, stream_vhost):
    page = _browse(viewer_client, stream_vhost, **{"from": "offset", "offset": "25"})
    assert _offsets(page) == [25, 26, 27, 28, 29]
    assert "that is the end for now" in page


def test_it_reads_from_a_time(viewer_client, stream_vhost):
    before = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    page = _browse(viewer_client, stream_vhost, **{"from": "time", "time": before, "count": "5"})
    assert _offsets(page) == [0, 1, 2, 3, 4]
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    none = _browse(viewer_client, stream_vhost, **{"from": "time", "time": later})
    assert "0 messages from" in none and _offsets(none) == []


def test_it_takes_nothing_away(viewer_client, mgmt, stream_vhost):
    first = _browse(viewer_client, stream_vhost, **{"from": "first", "count": "30"})
    again = _browse(viewer_client, stream_vhost, **{"from": "first", "count": "30"})
    assert _offsets(first) == _offsets(again) == list(range(30))
    assert mgmt.queue(stream_vhost, STREAM)["messages"] == 30
    consumers = mgmt.queue(stream_vhost, STREAM).get("consumers") or 0
    assert consumers == 0  # the browser's consumer was cancelled


def test_it_offers_the_browser_on_a_streams_page_instead_of_peek(viewer_client, stream_vhost):
    page = viewer_client.get(reverse("queue", args=[stream_vhost, STREAM])).content.decode()
    assert "Browse the stream" in page and 'id="peek"' not in page
    whole = _browse(viewer_client, stream_vhost, partial=False, **{"from": "last"})
    assert "Browse the stream" in whole and "<html" in whole


def test_it_refuses_to_read_a_classic_queue_this_way(viewer_client, mgmt, scratch_vhost):
    mgmt.declare_queue(scratch_vhost, STREAM)  # a classic queue of the same name
    wait_for_stats(mgmt, scratch_vhost, STREAM)
    publish(mgmt, scratch_vhost, STREAM, count=2)
    wait_for_messages(mgmt, scratch_vhost, STREAM, 2)
    page = _browse(viewer_client, scratch_vhost, status=400)
    assert "is a classic queue, not a stream" in page
    assert mgmt.queue(scratch_vhost, STREAM)["messages"] == 2


def test_it_explains_a_start_it_cannot_use(viewer_client, stream_vhost):
    page = _browse(viewer_client, stream_vhost, status=400, **{"from": "offset", "offset": "-3"})
    assert "An offset is a whole number" in page
    page = _browse(viewer_client, stream_vhost, status=400, **{"from": "time", "time": "soon"})
    assert "A time is a date and time" in page


def test_it_parses_starts_and_bounds_the_page():
    assert streams.parse({}).argument == "first"
    assert streams.parse({"from": "offset", "offset": "7"}).argument == 7
    when = streams.parse({"from": "time", "time": "2026-01-02T03:04:05"}).argument
    assert when == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert streams.parse({"count": "100000"}).count == 100
    with pytest.raises(streams.BadStart):
        streams.parse({"from": "middle"})
