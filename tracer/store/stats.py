"""Latency statistics per service (/api/flows/stats in docs/architecture.md).

Flows are rolled up per service and minute of request as they are written
(tracer/store/storage.py): calls, timeouts (no reply in time, or a late one),
late replies, calls answered in time with latency sum and max, and a log-scale
latency histogram of 16 buckets per doubling (each bucket spans 4.4 %). A late
reply is a timeout here, never a latency: not in the percentiles, the mean, the
maximum or the histogram. A window with few answered calls is computed exactly
from the flows; a large one from the roll-ups, its percentiles within about 2 %
of the exact value and its bounds on whole minutes.

Throughput is calls over the time the service was active in the window: the
minutes that had calls, cut to the window's bounds — not over the whole window,
whose quiet minutes before the first call say nothing about the service's rate.
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeAlias, TypedDict

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.utils import timezone

if TYPE_CHECKING:
    from tracer.models import ServiceMinute

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
MINUTE = timedelta(minutes=1)


class ServiceEntry(TypedDict):
    """One service's figures, as /api/flows/stats gives them."""

    service: str
    vhost: str
    count: int
    timeouts: int  # late replies included
    late: int
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    answered: int  # in time: the calls the latency figures describe
    exact: bool
    active_s: float  # seconds of the window in minutes with calls
    calls_per_s: float | None  # count over active_s


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
    late: int,
    active_s: float,
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
        "late": late,
        "p50_ms": shown(50),
        "p90_ms": shown(90),
        "p95_ms": shown(95),
        "p99_ms": shown(99),
        "max_ms": _round(highest),
        "mean_ms": _round(mean),
        "answered": answered,
        "exact": exact,
        "active_s": round(active_s, 3),
        "calls_per_s": round(count / active_s, 3) if active_s > 0 else None,
    }


def stats_window(
    since: datetime | None = None, until: datetime | None = None
) -> tuple[datetime, datetime]:
    """The window statistics cover: until now, DEFAULT_WINDOW long, unless given."""
    until = until or timezone.now()
    return since or until - DEFAULT_WINDOW, until


def _overlap_s(minute: datetime, since: datetime, until: datetime) -> float:
    """How much of the minute starting at `minute` lies in [since, until], in seconds."""
    start, end = max(minute, since), min(minute + MINUTE, until)
    return max((end - start).total_seconds(), 0.0)


def active_seconds(minutes: Iterable[datetime], since: datetime, until: datetime) -> float:
    """Seconds of [since, until] covered by these minutes (each counted once)."""
    return sum(_overlap_s(minute, since, until) for minute in set(minutes))


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

    since, until = stats_window(since, until)
    first_minute = since.replace(second=0, microsecond=0)
    minutes = ServiceMinute.objects.filter(minute__gte=first_minute, minute__lte=until)
    if vhost is not None:
        minutes = minutes.filter(vhost=vhost)
    if service is not None:
        minutes = minutes.filter(service=service)
    # `active` first: its filter means the column, before `calls` names the sum.
    sizes = minutes.values("vhost", "service").annotate(active=Count("id", filter=Q(calls__gt=0)))
    sizes = sizes.annotate(
        calls=Sum("calls"),
        timeouts=Sum("timeouts"),
        late=Sum("late"),
        answered=Sum("answered"),
        total=Sum("latency_sum_ms"),
        highest=Max("latency_max_ms"),
    )
    active = _active_by_service(minutes, first_minute, since, until)
    results = []
    for size in sizes.order_by("service", "vhost"):
        if not size["calls"]:
            continue
        key = {"vhost": size["vhost"], "service": size["service"]}
        active_s = size["active"] * 60.0 - active[(size["vhost"], size["service"])]
        if size["answered"] + size["late"] <= EXACT_LIMIT:
            flows = Flow.objects.filter(
                **key, started_at__gte=since, started_at__lte=until, backlog=False
            ).exclude(status="orphan")
            rows = list(flows.values_list("latency_ms", "status", "late"))
            if not rows:
                continue
            latencies = [value for value, _, late in rows if value is not None and not late]
            timeouts = sum(1 for _, status, late in rows if status == "timeout" or late)
            late_count = sum(1 for _, _, late in rows if late)
            results.append(
                _entry(
                    size["vhost"],
                    size["service"],
                    len(rows),
                    timeouts,
                    late_count,
                    active_s,
                    latencies,
                )
            )
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
                size["late"],
                active_s,
                rollup=rollup,
                exact=False,
            )
        )
    return results


def _active_by_service(
    minutes: "QuerySet[ServiceMinute]", first_minute: datetime, since: datetime, until: datetime
) -> defaultdict[tuple[str, str], float]:
    """Per (vhost, service): seconds to take off its active minutes' 60 s each, for
    the two minutes the window's bounds cut (the first and the one holding `until`)."""
    edges = {first_minute, until.replace(second=0, microsecond=0)}
    cut: defaultdict[tuple[str, str], float] = defaultdict(float)
    rows = minutes.filter(calls__gt=0, minute__in=edges).values_list("vhost", "service", "minute")
    for row_vhost, row_service, minute in rows:
        cut[(row_vhost, row_service)] += 60.0 - _overlap_s(minute, since, until)
    return cut
