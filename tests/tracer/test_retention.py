"""tracer.store.retention: what is older than WARREN_RETENTION goes, in chunks; the rest stays."""

from datetime import timedelta

import pytest
from django.conf import settings

from tests.tracer.frames import T0, S, rpc_call
from tracer.models import Flow, LatencyBucket, Message, ServiceMinute
from tracer.store import storage
from tracer.store.retention import prune
from tracer.tasks import prune_captured
from tracer.times import from_us

pytestmark = pytest.mark.django_db


def test_it_prunes_old_events_flows_and_rollups_in_chunks():
    old = [e for i in range(3) for e in rpc_call(at=i * 1000)[1]]
    new = [e for e in rpc_call(at=10 * 86400 * S)[1]]
    storage.store_batch(old + new, now=T0 + 10 * 86400 * S, timeout_s=30)
    assert Message.objects.count() == 16 and Flow.objects.count() == 4

    removed = prune(retention=timedelta(days=7), now=from_us(T0 + 10 * 86400 * S), chunk=5)

    assert removed["messages"] == 12 and removed["flows"] == 3
    assert Message.objects.count() == 4 and Flow.objects.count() == 1
    assert ServiceMinute.objects.count() == 1 and LatencyBucket.objects.count() == 1
    assert prune(retention=timedelta(days=7), now=from_us(T0 + 10 * 86400 * S))["messages"] == 0


def test_it_runs_as_a_beat_task():
    assert settings.CELERY_BEAT_SCHEDULE["tracer-prune"]["task"] == "tracer.prune"
    storage.store_batch(rpc_call(at=0)[1], now=T0, timeout_s=30)  # 2023: beyond 7 days
    assert prune_captured.apply().get()["messages"] == 4
    assert not Message.objects.exists()
