"""/metrics: counters folded from stored flows exactly once, tap and replay
figures from stored rows, and who may read them."""

import json
from collections.abc import Iterable
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from console.models import ApiToken
from replay.models import ReplayJob
from tests.export import stored
from tracer.export import metrics
from tracer.export.models import RpcTotals
from tracer.models import TapSession

pytestmark = pytest.mark.django_db


def scrape(client, **extra) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


class FamiliesOf:
    """A collector of given families, for prometheus-client's own writer."""

    def __init__(self, families: Iterable[Metric]):
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def test_it_folds_each_settled_call_once_into_counters_and_histograms(client, settings):
    settings.WARREN_RPC_TIMEOUT = 5
    long_ago = timezone.now() - timedelta(minutes=10)
    service = "metrics-fold"
    stored.call(long_ago, queue_wait_ms=2, service_ms=30, reply_delivery_ms=1, service=service)
    stored.call(
        long_ago + timedelta(seconds=1),
        queue_wait_ms=300,
        service_ms=700,
        reply_delivery_ms=0,  # 1 s exactly: on the edge of le="1.0", so inside it
        service=service,
    )
    stored.call(long_ago + timedelta(seconds=2), service_ms=None, status="timeout", service=service)
    stored.call(
        long_ago + timedelta(seconds=3),
        service_ms=9000,
        status="complete",
        late=True,
        service=service,
    )
    # Direct reply-to: no reply delivery; end to end is until the reply's publish.
    stored.call(
        long_ago + timedelta(seconds=4),
        queue_wait_ms=1,
        service_ms=3,
        reply_delivery_ms=None,
        service=service,
    )
    stored.call(long_ago + timedelta(seconds=5), backlog=True, service=service)  # never counted
    stored.call(timezone.now(), service=service)  # not settled yet

    assert metrics.fold_settled() == 5
    assert metrics.fold_settled() == 0  # again: nothing counted twice

    samples = scrape(client)
    key = labels(vhost="/", service=service)
    assert samples[("warren_rpc_calls_total", key)] == 5
    assert samples[("warren_rpc_timeouts_total", key)] == 2
    assert samples[("warren_rpc_late_replies_total", key)] == 1
    e2e = labels(vhost="/", service=service, kind="end_to_end")
    # 33 ms, 1000 ms, 4 ms: the late and the unanswered calls are in no histogram.
    assert samples[("warren_rpc_latency_seconds_count", e2e)] == 3
    assert samples[("warren_rpc_latency_seconds_sum", e2e)] == pytest.approx(1.037)
    assert samples[("warren_rpc_latency_seconds_bucket", labels(**dict(e2e), le="0.005"))] == 1
    assert samples[("warren_rpc_latency_seconds_bucket", labels(**dict(e2e), le="0.05"))] == 2
    assert samples[("warren_rpc_latency_seconds_bucket", labels(**dict(e2e), le="0.5"))] == 2
    assert samples[("warren_rpc_latency_seconds_bucket", labels(**dict(e2e), le="1.0"))] == 3
    assert samples[("warren_rpc_latency_seconds_bucket", labels(**dict(e2e), le="+Inf"))] == 3
    wait = labels(vhost="/", service=service, kind="queue_wait")
    assert samples[("warren_rpc_latency_seconds_bucket", labels(**dict(wait), le="0.0025"))] == 2
    assert samples[("warren_rpc_latency_seconds_bucket", labels(**dict(wait), le="0.25"))] == 2
    assert samples[("warren_rpc_latency_seconds_bucket", labels(**dict(wait), le="0.5"))] == 3
    work = labels(vhost="/", service=service, kind="service")
    assert samples[("warren_rpc_latency_seconds_sum", work)] == pytest.approx(0.733)


def test_it_puts_a_latency_on_an_edge_into_that_edges_bucket():
    assert metrics.bucket_index(100.0) == metrics.LATENCY_BUCKETS_S.index(0.1)
    assert metrics.bucket_index(100.001) == metrics.LATENCY_BUCKETS_S.index(0.25)
    assert metrics.bucket_index(0.0) == 0
    assert metrics.bucket_index(61_000.0) == len(metrics.LATENCY_BUCKETS_S)


def parsed(text: str) -> list[tuple[str, str, str, list[tuple[str, dict[str, str], float]]]]:
    return [
        (f.name, f.type, f.documentation, [(s.name, s.labels, s.value) for s in f.samples])
        for f in text_string_to_metric_families(text)
    ]


def test_it_writes_the_rpc_families_as_prometheus_client_would():
    counts = list(range(len(metrics.LATENCY_BUCKETS_S) + 1))
    rows = [
        ("/", "billing", 7, 2, 1, {"end_to_end": {"counts": counts, "sum_s": 1.25}}),
        ('odd "vhost"\\', "line\nbreak", 0, 0, 0, {}),
        ("/", "stored-as-text", 3, 0, 0, json.dumps({"service": {"counts": counts, "sum_s": 2}})),
    ]
    ours = b"".join(metrics.rpc_text(rows)).decode()
    reference = generate_latest(FamiliesOf(metrics.rpc_families(rows))).decode()
    assert parsed(ours) == parsed(reference)
    assert len(parsed(ours)) == 4


def test_it_shows_a_services_new_totals_at_the_next_scrape(client):
    width = len(metrics.LATENCY_BUCKETS_S) + 1
    histogram = {"counts": [1] + [0] * (width - 1), "sum_s": 0.001}
    RpcTotals.objects.create(vhost="/", service="steady", calls=5, latency={"service": histogram})
    moving = RpcTotals.objects.create(vhost="/", service="moving", calls=1, latency={})
    key = labels(vhost="/", service="moving")
    assert scrape(client)[("warren_rpc_calls_total", key)] == 1

    moving.calls = 2
    moving.latency = {"service": histogram}
    moving.save()
    samples = scrape(client)
    assert samples[("warren_rpc_calls_total", key)] == 2
    bucket = labels(vhost="/", service="moving", kind="service", le="0.001")
    assert samples[("warren_rpc_latency_seconds_bucket", bucket)] == 1
    assert samples[("warren_rpc_calls_total", labels(vhost="/", service="steady"))] == 5

    moving.delete()
    assert ("warren_rpc_calls_total", key) not in scrape(client)


def test_it_waits_for_the_timeout_before_counting_a_pending_call(settings):
    settings.WARREN_RPC_TIMEOUT = 30
    now = timezone.now()
    stored.call(now - timedelta(seconds=35), service_ms=None, status="pending", service="slow")
    assert metrics.fold_settled(now=now) == 0  # 35 s < twice the timeout
    assert metrics.fold_settled(now=now + timedelta(seconds=30)) == 1
    totals = RpcTotals.objects.get(service="slow")
    assert (totals.calls, totals.timeouts, totals.late_replies) == (1, 1, 0)


def test_it_keeps_tap_counters_when_retention_prunes_their_session(client):
    now = timezone.now()
    fields = {"received": 100, "stored": 90, "dropped": 7, "duplicates": 3, "backlog": 5}
    old = TapSession.objects.create(pid=1, started_at=now, heartbeat_at=now, ended_at=now, **fields)
    TapSession.objects.create(pid=2, started_at=now, heartbeat_at=now, received=10, stored=10)
    metrics.mirror_tap_sessions()
    before = scrape(client)
    old.delete()  # what retention does to a session older than WARREN_RETENTION
    after = scrape(client)
    for state, value in (("received", 110), ("stored", 100), ("dropped", 7), ("duplicate", 3)):
        assert before[("warren_tap_events_total", labels(state=state))] == value
        assert after[("warren_tap_events_total", labels(state=state))] == value
    assert after[("warren_tap_backlog_events_total", ())] == 5
    assert after[("warren_tap_running", ())] == 1


def test_it_shows_replay_jobs_and_messages(client):
    ReplayJob.objects.create(status=ReplayJob.DONE, total=5, sent=5, confirmed=4, failed=1)
    ReplayJob.objects.create(status=ReplayJob.RUNNING, total=9, sent=2, confirmed=2)
    samples = scrape(client)
    assert samples[("warren_replay_messages_total", labels(state="sent"))] == 7
    assert samples[("warren_replay_messages_total", labels(state="confirmed"))] == 6
    assert samples[("warren_replay_messages_total", labels(state="failed"))] == 1
    assert samples[("warren_replay_jobs", labels(state="running"))] == 1
    assert samples[("warren_replay_jobs", labels(state="queued"))] == 0


def test_it_answers_a_token_or_an_allowed_address_and_nobody_else(
    client, viewer, roleless, settings
):
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    refused = client.get("/metrics", **outside)
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert b"warren_" not in refused.content
    token = ApiToken.issue(viewer)
    assert (
        client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}", **outside).status_code == 200
    )
    bad = client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrn_not-a-token", **outside)
    assert bad.status_code == 401
    no_role = ApiToken.issue(roleless)
    assert (
        client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {no_role}", **outside).status_code == 401
    )
    settings.WARREN_METRICS_ALLOW = ["203.0.113.0/24"]
    assert client.get("/metrics", **outside).status_code == 200
    assert client.get("/metrics").status_code == 401  # loopback is no longer in the list
