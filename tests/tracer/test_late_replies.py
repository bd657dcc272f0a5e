"""A reply after WARREN_RPC_TIMEOUT stays a timeout for statistics: counted in
`timeouts` and `late`, never in percentiles, means, maxima, histograms or series
(exactly from the flows and from the roll-ups alike); the flow page still shows
when it came."""

import pytest
from django.urls import reverse

from tests.conftest import unique_name
from tests.live.events import rpc_call
from tracer.models import Flow, LatencyBucket, ServiceMinute
from tracer.store import stats, storage
from tracer.times import now_us

pytestmark = pytest.mark.django_db

LATE_MS = 376_000.0  # the reply that came six minutes after its caller gave up


def _store_with_a_late_reply(vhost):
    start = now_us() - 7 * 60 * 1_000_000
    _, late = rpc_call(vhost, latency_ms=LATE_MS, start_us=start)
    in_time = [rpc_call(vhost, latency_ms=ms)[1] for ms in (10.0, 20.0, 30.0)]
    for call in (late, *in_time):
        storage.store_batch(call, timeout_s=30)
    return Flow.objects.get(vhost=vhost, late=True)


@pytest.mark.parametrize("exact", [True, False])
def test_it_counts_a_late_reply_as_a_timeout_and_late_never_as_latency(monkeypatch, exact):
    vhost = unique_name("late")
    flow = _store_with_a_late_reply(vhost)
    assert (flow.status, flow.latency_ms) == ("complete", LATE_MS)
    if not exact:
        monkeypatch.setattr(stats, "EXACT_LIMIT", 0)
    (entry,) = stats.service_stats(vhost=vhost)
    assert entry["exact"] is exact
    assert (entry["count"], entry["timeouts"], entry["late"], entry["answered"]) == (4, 1, 1, 3)
    assert entry["max_ms"] == pytest.approx(30.0, rel=0.03)
    assert entry["mean_ms"] == pytest.approx(20.0)
    assert entry["p99_ms"] < 31.0 and entry["p50_ms"] == pytest.approx(20.0, rel=0.03)


def test_it_keeps_the_late_reply_out_of_the_rollups_latency_columns():
    vhost = unique_name("late")
    _store_with_a_late_reply(vhost)
    minutes = ServiceMinute.objects.filter(vhost=vhost)
    assert sum(m.late for m in minutes) == 1 and sum(m.timeouts for m in minutes) == 1
    assert sum(m.answered for m in minutes) == 3
    assert max(m.latency_max_ms for m in minutes) < 31.0
    assert sum(b.count for b in LatencyBucket.objects.filter(vhost=vhost)) == 3


@pytest.mark.parametrize("window", ["15m", "24h"])
def test_it_keeps_the_late_reply_out_of_the_latency_pages_charts(viewer_client, window):
    vhost = unique_name("late")
    _store_with_a_late_reply(vhost)
    data = viewer_client.get(reverse("latency_data"), {"vhost": vhost, "window": window}).json()
    assert sum(data["histogram"]["counts"]) == 3
    assert max(data["histogram"]["edges_ms"]) < 31.0
    p99 = [value for value in data["series"]["p99"] if value is not None]
    assert p99 and max(p99) < 31.0
    assert sum(data["series"]["timeouts"]) == 1


def test_it_shows_late_and_timeouts_on_the_latency_page_and_the_reply_on_the_flow_page(
    viewer_client,
):
    vhost = unique_name("late")
    flow = _store_with_a_late_reply(vhost)
    page = viewer_client.get(reverse("latency"), {"vhost": vhost, "window": "15m"}).content
    row = page.decode().split('data-service="rpc_queue"')[1].split("</tr>")[0]
    cells = [cell for cell in row.split("<td")[1:]]
    texts = [cell.split(">", 1)[1].split("</td")[0] for cell in cells]
    # Service, named by, vhost, calls, calls/s, timeouts, late, p50, p95, p99, max, mean
    assert texts[3] == "4" and texts[5] == "1" and texts[6] == "1"
    assert "376" not in "".join(texts[7:12])
    detail = viewer_client.get(reverse("flow", args=[flow.id])).content.decode()
    assert "late</span>" in detail
    assert flow.replied_at.strftime("%Y-%m-%d %H:%M:%S") in detail
