"""Latency statistics per service (/api/flows/stats in docs/architecture.md).

Flows are rolled up per service and minute of request as they are written
(tracer/store/storage.py): calls, timeouts (no reply in time, or a late one),
answered calls with latency sum and max, and a log-scale latency histogram of
16 buckets per doubling (each bucket spans 4.4 %). A window with few answered
calls is computed exactly from the flows; a large one from the roll-ups, its
percentiles within about 2 % of the exact value and its bounds on whole minutes.
"""

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypeAlias, TypedDict

from django.db.models import Max, Sum
from django.utils import timezone

BUCKETS_PER_DOUBLING = 16


def bucket_of(latency_ms: float) -> int:
    """Histogram bucket of a latency: 0 for 1 µs or less, 16 per doubling after."""
    microseconds = max(float(latency_ms) * 1000.0, 1.0)
    return int(math.floor(math.log2(microseconds) * BUCKETS_PER_DOUBLING))


def bucket_value_ms(bucket: int) -> float:
    """The geometric middle of a bucket, in milliseconds."""
    return 2 ** ((bucket + 0.5) / BUCKETS_PER_DOUBLING) / 1000.0


EXACT_LIMIT = 20_000
DEFAULT_WINDOW = timedelta(hours=24)
PERCENTILES = (50, 90, 95, 99)


class ServiceEntry(TypedDict):
    """One service's figures, as /api/flows/stats gives them."""

    service: str
    vhost: str
    count: int
    timeouts: int
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    answered: int
    exact: bool


# From the roll-ups: (answered, latency sum, latency max, {bucket: count}).
RollUpFigures: TypeAlias = tuple[int, float, float, dict[int, int]]


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * p / 100.0
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def _bucket_percentile(buckets: dict[int, int], answered: int, p: float, highest: float) -> float:
    """From a histogram {bucket: count}: the bucket holding rank p, clamped to the max."""
    target = (answered - 1) * p / 100.0
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen > target:
            return min(bucket_value_ms(bucket), highest)
    return highest


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _entry(
    vhost: str,
    service: str,
    count: int,
    timeouts: int,
    latencies: list[float] | None = None,
    rollup: RollUpFigures | None = None,
    exact: bool = True,
) -> ServiceEntry:
    values: dict[int, float | None]
    highest: float | None
    mean: float | None
    if latencies is not None:
        latencies.sort()
        answered = len(latencies)
        values = {p: percentile(latencies, p) for p in PERCENTILES}
        highest = latencies[-1] if latencies else None
        mean = sum(latencies) / answered if answered else None
    else:
        assert rollup is not None, "_entry takes latencies or roll-up figures"
        answered, total, highest, buckets = rollup
        values = {p: _bucket_percentile(buckets, answered, p, highest) for p in PERCENTILES}
        mean = total / answered if answered else None
        highest = highest if answered else None

    def shown(p: int) -> float | None:
        return _round(values[p]) if answered else None

    return {
        "service": service,
        "vhost": vhost,
        "count": count,
        "timeouts": timeouts,
        "p50_ms": shown(50),
        "p90_ms": shown(90),
        "p95_ms": shown(95),
        "p99_ms": shown(99),
        "max_ms": _round(highest),
        "mean_ms": _round(mean),
        "answered": answered,
        "exact": exact,
    }


def service_stats(
    vhost: str | None = None,
    service: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ServiceEntry]:
    """Per (vhost, service): calls, timeouts and latency percentiles in a window.

    The roll-ups say how big each service's window is; up to EXACT_LIMIT answered
    calls the figures come exactly from the flows, beyond from the roll-ups.
    Backlog flows and orphans are left out (docs/architecture.md, Pairing: statistics).
    """
    from tracer.models import Flow, LatencyBucket, ServiceMinute

    until = until or timezone.now()
    since = since or until - DEFAULT_WINDOW
    first_minute = since.replace(second=0, microsecond=0)
    minutes = ServiceMinute.objects.filter(minute__gte=first_minute, minute__lte=until)
    if vhost is not None:
        minutes = minutes.filter(vhost=vhost)
    if service is not None:
        minutes = minutes.filter(service=service)
    sizes = minutes.values("vhost", "service").annotate(
        calls=Sum("calls"),
        timeouts=Sum("timeouts"),
        answered=Sum("answered"),
        total=Sum("latency_sum_ms"),
        highest=Max("latency_max_ms"),
    )
    results = []
    for size in sizes.order_by("service", "vhost"):
        if not size["calls"]:
            continue
        key = {"vhost": size["vhost"], "service": size["service"]}
        if size["answered"] <= EXACT_LIMIT:
            flows = Flow.objects.filter(
                **key, started_at__gte=since, started_at__lte=until, backlog=False
            ).exclude(status="orphan")
            rows = list(flows.values_list("latency_ms", "status", "late"))
            if not rows:
                continue
            latencies = [latency for latency, _, _ in rows if latency is not None]
            timeouts = sum(1 for _, status, late in rows if status == "timeout" or late)
            results.append(_entry(size["vhost"], size["service"], len(rows), timeouts, latencies))
            continue
        buckets = dict(
            LatencyBucket.objects.filter(**key, minute__gte=first_minute, minute__lte=until)
            .values_list("bucket")
            .annotate(total=Sum("count"))
            .values_list("bucket", "total")
        )
        buckets = {bucket: count for bucket, count in buckets.items() if count > 0}
        rollup = (size["answered"], size["total"], size["highest"], buckets)
        results.append(
            _entry(
                size["vhost"],
                size["service"],
                size["calls"],
                size["timeouts"],
                rollup=rollup,
                exact=False,
            )
        )
    return results
