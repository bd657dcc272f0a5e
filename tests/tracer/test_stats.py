"""tracer.store.stats: exact percentiles for small windows, roll-ups for large ones."""

import random

import pytest

from tests.tracer.frames import frame, rpc_call
from tracer.store import stats, storage
from tracer.store.stats import bucket_of, bucket_value_ms, percentile
from tracer.times import from_us, now_us

pytestmark = pytest.mark.django_db


def test_it_interpolates_percentiles_like_numpy():
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == 25.0
    assert percentile([5.0], 99) == 5.0
    assert percentile([], 50) is None


def test_it_keeps_bucket_values_within_a_few_percent():
    for latency in (0.05, 0.9, 1.0, 7.3, 120.0, 4_567.0, 30_000.0):
        assert abs(bucket_value_ms(bucket_of(latency)) - latency) / latency < 0.025


def _store_calls(latencies_ms, start_us, timeouts=0, backlog_calls=0):
    events = []
    for latency in latencies_ms:
        _, evs = rpc_call(at=0, work=int(latency * 1000) - 2_000, wait=2_000)
        events += evs
    for _ in range(timeouts):
        events.append(rpc_call(at=0)[1][0])  # a request never answered
    for _ in range(backlog_calls):
        evs = rpc_call(at=0, work=500_000_000)[1]
        for event in evs:
            event.backlog = True
        events += evs
    base = min(e.captured_us for e in events)
    for offset, event in enumerate(events):
        event.captured_us += start_us - base + (offset // 4) * 1000
    for start in range(0, len(events), 2000):
        storage.store_batch(events[start : start + 2000], timeout_s=30, now=now_us())


def test_it_counts_calls_timeouts_and_leaves_backlog_out():
    start = now_us() - 3600 * 1_000_000
    _store_calls([5.0, 10.0, 15.0], start, timeouts=2, backlog_calls=3)
    (entry,) = stats.service_stats()
    assert (entry["count"], entry["timeouts"], entry["answered"]) == (5, 2, 3)
    assert (entry["p50_ms"], entry["max_ms"], entry["exact"]) == (10.0, 15.0, True)


def test_it_answers_large_windows_from_the_rollups(monkeypatch):
    rng = random.Random(7)
    latencies = [round(rng.lognormvariate(3, 0.8) + 2.5, 3) for _ in range(3000)]
    start = now_us() - 2 * 3600 * 1_000_000
    _store_calls(latencies, start)
    (exact,) = stats.service_stats()
    monkeypatch.setattr(stats, "EXACT_LIMIT", 100)
    (rolled,) = stats.service_stats()
    assert exact["exact"] is True and rolled["exact"] is False
    assert rolled["count"] == exact["count"] == 3000
    assert rolled["max_ms"] == exact["max_ms"]
    assert abs(rolled["mean_ms"] - exact["mean_ms"]) < 0.01
    for name in ("p50_ms", "p90_ms", "p95_ms", "p99_ms"):
        assert abs(rolled[name] - exact[name]) / exact[name] < 0.03, name
    window = stats.service_stats(since=from_us(start + 3 * 3600 * 1_000_000))
    assert window == []


def test_it_separates_services_and_vhosts():
    start = now_us() - 600 * 1_000_000
    events = rpc_call(at=0, service="a")[1] + rpc_call(at=0, service="b", vhost="x")[1]
    events.append(frame("publish", 0, routing_key="plain"))
    shift = start - events[0].captured_us
    for event in events:
        event.captured_us += shift
    storage.store_batch(events, timeout_s=30)
    found = {(e["vhost"], e["service"]) for e in stats.service_stats()}
    assert found == {("v", "a"), ("x", "b")}
    assert [e["service"] for e in stats.service_stats(vhost="x")] == ["b"]
