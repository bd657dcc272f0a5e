"""The migration that added ServiceMinute.late takes the late replies rolled up before it
out of the latency columns (answered, sum, maximum, histogram) and counts them as late."""

import importlib

import pytest
from django.apps import apps

from tests.conftest import unique_name
from tests.live.events import rpc_call
from tracer.models import Flow, LatencyBucket, ServiceMinute
from tracer.store import stats, storage
from tracer.times import minute_us, now_us, to_us

pytestmark = pytest.mark.django_db

migration = importlib.import_module("tracer.migrations.0005_service_minute_late")


def test_it_takes_late_replies_rolled_up_the_old_way_out_of_the_latency_figures():
    vhost = unique_name("old")
    start = minute_us(now_us() - 10 * 60 * 1_000_000) + 5_000_000  # both calls in one minute
    late = rpc_call(vhost, latency_ms=90_000.0, start_us=start)[1]
    in_time = rpc_call(vhost, latency_ms=12.0, start_us=start + 1_000_000)[1]
    storage.store_batch(late + in_time, timeout_s=30)
    flow = Flow.objects.get(vhost=vhost, late=True)
    minute = ServiceMinute.objects.get(vhost=vhost)
    # The roll-ups as they were written before: the late reply's latency in them.
    ServiceMinute.objects.filter(id=minute.id).update(
        late=0, answered=2, latency_sum_ms=12.0 + flow.latency_ms, latency_max_ms=flow.latency_ms
    )
    LatencyBucket.objects.create(
        vhost=vhost,
        service=flow.service,
        minute=minute.minute,
        bucket=stats.bucket_of(flow.latency_ms),
        count=1,
    )
    assert to_us(minute.minute) <= to_us(flow.requested_at)

    migration.take_late_replies_out(apps, None)

    minute.refresh_from_db()
    assert (minute.calls, minute.timeouts, minute.late, minute.answered) == (2, 1, 1, 1)
    assert (minute.latency_sum_ms, minute.latency_max_ms) == (pytest.approx(12.0), 12.0)
    counts = LatencyBucket.objects.filter(vhost=vhost, count__gt=0).values_list("count", flat=True)
    assert sum(counts) == 1
