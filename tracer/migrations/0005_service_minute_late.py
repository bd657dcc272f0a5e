"""ServiceMinute.late, and the late replies already rolled up taken out of the latency
figures: a late reply counts as a timeout and as late, never as a latency
(tracer/store/rollup.py)."""

import math
from collections import defaultdict
from datetime import timedelta

from django.db import migrations, models
from django.db.models import F, Max

BUCKETS_PER_DOUBLING = 16  # tracer.store.stats, as of this migration


def _bucket_of(latency_ms):
    return int(math.floor(math.log2(max(float(latency_ms) * 1000.0, 1.0)) * BUCKETS_PER_DOUBLING))


def _minute(at):
    return at.replace(second=0, microsecond=0)


def take_late_replies_out(apps, schema_editor):
    Flow = apps.get_model("tracer", "Flow")
    ServiceMinute = apps.get_model("tracer", "ServiceMinute")
    LatencyBucket = apps.get_model("tracer", "LatencyBucket")
    late = (
        Flow.objects.filter(late=True, backlog=False, latency_ms__isnull=False)
        .exclude(status="orphan")
        .exclude(service="")
        .exclude(requested_at__isnull=True)
        .values_list("vhost", "service", "requested_at", "latency_ms")
    )
    minutes = defaultdict(lambda: [0, 0.0])  # (vhost, service, minute) -> [late, latency sum]
    buckets = defaultdict(int)
    for vhost, service, requested_at, latency in late.iterator(chunk_size=2000):
        key = (vhost, service, _minute(requested_at))
        minutes[key][0] += 1
        minutes[key][1] += latency
        buckets[(*key, _bucket_of(latency))] += 1
    for (vhost, service, minute), (count, total) in minutes.items():
        row = ServiceMinute.objects.filter(vhost=vhost, service=service, minute=minute)
        in_time = Flow.objects.filter(
            vhost=vhost,
            service=service,
            requested_at__gte=minute,
            requested_at__lt=minute + timedelta(minutes=1),
            late=False,
            backlog=False,
            latency_ms__isnull=False,
        ).exclude(status="orphan")
        highest = in_time.aggregate(highest=Max("latency_ms"))["highest"] or 0.0
        row.update(
            late=F("late") + count,
            answered=F("answered") - count,
            latency_sum_ms=F("latency_sum_ms") - total,
            latency_max_ms=highest,
        )
    for (vhost, service, minute, bucket), count in buckets.items():
        LatencyBucket.objects.filter(
            vhost=vhost, service=service, minute=minute, bucket=bucket
        ).update(count=F("count") - count)


class Migration(migrations.Migration):
    dependencies = [
        ("tracer", "0004_traced_vhost"),
    ]

    operations = [
        migrations.AddField(
            model_name="serviceminute",
            name="late",
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunPython(take_late_replies_out, migrations.RunPython.noop),
    ]
