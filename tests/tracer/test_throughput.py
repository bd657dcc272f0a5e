"""Calls a second are over the time a service was active in the window, not the whole
window: a service doing 2 calls a second for the last minute reads about 2/s in the
1-hour view, and /api/flows/stats says which window it used."""

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from tests.conftest import unique_name
from tests.live.events import rpc_call
from tracer.store import storage
from tracer.times import now_us

pytestmark = pytest.mark.django_db


def _two_a_second_for_a_minute(vhost):
    now = now_us()
    calls = [rpc_call(vhost, start_us=now - 61_000_000 + k * 500_000)[1] for k in range(120)]
    storage.store_batch([event for call in calls for event in call], timeout_s=30)


def test_it_divides_calls_by_the_minutes_the_service_had_calls(viewer_client):
    vhost = unique_name("rate")
    _two_a_second_for_a_minute(vhost)
    until = datetime.now(UTC)
    answer = viewer_client.get(
        "/api/flows/stats", {"vhost": vhost, "since": "1h", "until": until.isoformat()}
    ).json()
    (entry,) = answer["services"]
    assert entry["count"] == 120
    # 61 s of calls touch two or three minutes, the last cut at `until`: 60 to 180 s.
    assert 60 <= entry["active_s"] <= 180
    assert entry["calls_per_s"] == pytest.approx(120 / entry["active_s"], rel=1e-3)
    assert entry["calls_per_s"] >= 0.66  # not 120 / 3600 = 0.03
    assert datetime.fromisoformat(answer["to"]) == until
    # "1h" is an hour before now: the window it stood for, said back.
    assert abs((until - datetime.fromisoformat(answer["from"])).total_seconds() - 3600) < 60


def test_it_writes_the_window_and_the_active_rate_on_the_latency_page(viewer_client):
    vhost = unique_name("rate")
    _two_a_second_for_a_minute(vhost)
    text = viewer_client.get(reverse("latency"), {"vhost": vhost, "window": "1h"}).content.decode()
    assert re.search(r"Figures for <time[^>]*>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</time> – ", text)
    tile = re.search(r"([\d.]+) a second over (\d+)m (\d+)s with calls", text)
    assert tile, "the calls tile says its rate and the time it is over"
    assert 0.66 <= float(tile.group(1)) <= 2.0
    row = text.split('data-service="rpc_queue"')[1].split("</tr>")[0]
    rate = re.findall(r'<td class="num" title="over [^"]+">([\d.]+)</td>', row)
    assert rate and 0.66 <= float(rate[0]) <= 2.0
