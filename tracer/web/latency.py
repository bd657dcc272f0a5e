"""Latency per service for the Latency page: table, histogram and time series.

A window with few answered calls (up to EXACT_LIMIT) is computed exactly from
its flows, to the microsecond; a larger one from the per-minute roll-ups
(tracer/store/stats.py: percentiles within about 2 %, bounds on whole minutes) — the
rule of /api/flows/stats, whose figures the table shows. Backlog flows (events
that waited while the tap was away) and orphans are left out, as in the roll-ups;
a late reply is a timeout, never a latency (not in the percentiles, the
histogram or the series). Calls a second are over the time each service was
active in the window. Each service says which service rule named it
(tracer/store/services.py).
"""

import math
from collections import defaultdict
from dataclasses import asdict, dataclass

from django.db.models import Q, Sum

from tracer.models import Flow, LatencyBucket, Message, ServiceMinute
from tracer.store import services, stats
from tracer.times import from_us, minute_us, now_us, to_us

EXACT_LIMIT = 20_000
PERCENTILES = (50, 95, 99)
# Four histogram bars per doubling of latency: fine enough to see two humps.
HISTOGRAM_BUCKETS_PER_BAR = stats.BUCKETS_PER_DOUBLING // 4

WINDOWS = {
    "5m": ("5 min", 300, 5),
    "15m": ("15 min", 900, 15),
    "1h": ("1 hour", 3600, 60),
    "6h": ("6 hours", 6 * 3600, 300),
    "24h": ("24 hours", 86400, 900),
    "7d": ("7 days", 7 * 86400, 3 * 3600),
}
DEFAULT_WINDOW = "15m"


@dataclass(frozen=True)
class Window:
    key: str
    label: str
    since_us: int
    until_us: int
    step_s: int  # time series resolution

    @property
    def seconds(self):
        return (self.until_us - self.since_us) / 1_000_000


def window(key, now=None):
    """The window named `key` (unknown names fall back to the default), ending now."""
    if key not in WINDOWS:
        key = DEFAULT_WINDOW
    label, seconds, step_s = WINDOWS[key]
    until = now_us() if now is None else now
    return Window(key, label, until - seconds * 1_000_000, until, step_s)


def window_choices():
    return [(key, label) for key, (label, _, _) in WINDOWS.items()]


@dataclass
class ServiceStats:
    vhost: str
    service: str
    calls: int = 0
    answered: int = 0
    timeouts: int = 0
    late: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    mean_ms: float | None = None
    per_s: float = 0.0  # over active_s
    active_s: float = 0.0
    exact: bool = True
    named_by: str = ""  # the service rule that named it, in words

    def as_dict(self):
        return asdict(self)


def bucket_percentile(counts, p):
    """Percentile from {bucket: count} histogram (the bucket's middle value)."""
    total = sum(count for count in counts.values() if count > 0)
    if total <= 0:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    running = 0
    for bucket in sorted(counts):
        if counts[bucket] <= 0:
            continue
        running += counts[bucket]
        if running >= rank:
            return round(stats.bucket_value_ms(bucket), 3)
    return None


def _flows(window_, vhost=None, service=None):
    flows = Flow.objects.filter(
        requested_at__gte=from_us(window_.since_us),
        requested_at__lt=from_us(window_.until_us),
        backlog=False,
    ).exclude(Q(status="orphan") | Q(service=""))
    if vhost:
        flows = flows.filter(vhost=vhost)
    if service:
        flows = flows.filter(service=service)
    return flows


def _minutes(model, window_, vhost=None, service=None):
    rows = model.objects.filter(
        minute__gte=from_us(minute_us(window_.since_us)), minute__lt=from_us(window_.until_us)
    )
    if vhost:
        rows = rows.filter(vhost=vhost)
    if service:
        rows = rows.filter(service=service)
    return rows


def is_exact(window_, vhost=None, service=None):
    answered = _minutes(ServiceMinute, window_, vhost, service).aggregate(n=Sum("answered"))["n"]
    return (answered or 0) <= EXACT_LIMIT


def _is_timeout(status, late):
    return status == "timeout" or bool(late)


def service_table(window_, vhost=None):
    """ServiceStats per (vhost, service) in the window, slowest p95 first.

    The figures are /api/flows/stats's own (tracer.store.stats.service_stats), so the
    page and the API never disagree.
    """
    entries = stats.service_stats(
        vhost=vhost or None, since=from_us(window_.since_us), until=from_us(window_.until_us)
    )
    table = []
    for entry in entries:
        table.append(
            ServiceStats(
                vhost=entry["vhost"],
                service=entry["service"],
                calls=entry["count"],
                answered=entry["answered"],
                timeouts=entry["timeouts"],
                late=entry["late"],
                p50_ms=entry["p50_ms"],
                p95_ms=entry["p95_ms"],
                p99_ms=entry["p99_ms"],
                max_ms=entry["max_ms"],
                mean_ms=entry["mean_ms"],
                per_s=entry["calls_per_s"] or 0.0,
                active_s=entry["active_s"],
                exact=entry["exact"],
                named_by=named_by(entry["vhost"], entry["service"]),
            )
        )
    return sorted(table, key=lambda e: (e.p95_ms is None, -(e.p95_ms or 0), e.service, e.vhost))


def named_by(vhost, service):
    """Which service rule names `service` now, read from its newest call's request; when
    the rules in force name that request otherwise, the flows were named by earlier
    rules (manage.py rename_services re-derives them)."""
    newest = (
        Flow.objects.filter(vhost=vhost, service=service, request_id__isnull=False)
        .order_by("-started_at")
        .values_list("request_id", flat=True)
        .first()
    )
    request = (
        Message.objects.filter(id=newest).values("exchange", "routing_key", "properties").first()
        if newest
        else None
    )
    if request is None:
        return ""
    found = services.name(
        services.configured_rules(),
        request["exchange"],
        request["routing_key"],
        services.properties_of(request["properties"]),
    )
    return found.rule_label if found.service == service else "earlier rules"


def active_seconds(window_, vhost=None):
    """Seconds of the window in minutes when any service had calls."""
    minutes = (
        _minutes(ServiceMinute, window_, vhost)
        .filter(calls__gt=0)
        .values_list("minute", flat=True)
        .distinct()
    )
    return stats.active_seconds(minutes, from_us(window_.since_us), from_us(window_.until_us))


def histogram(window_, vhost=None, service=None, exact=None):
    """Latency histogram: bars of a quarter doubling each, {"edges_ms", "counts"}."""
    exact = is_exact(window_, vhost, service) if exact is None else exact
    counts = defaultdict(int)
    if exact:
        latencies = _flows(window_, vhost, service).filter(latency_ms__isnull=False, late=False)
        for (latency,) in latencies.values_list("latency_ms").iterator(chunk_size=2000):
            counts[stats.bucket_of(latency) // HISTOGRAM_BUCKETS_PER_BAR] += 1
    else:
        rows = (
            _minutes(LatencyBucket, window_, vhost, service)
            .values("bucket")
            .annotate(n=Sum("count"))
        )
        for row in rows:
            counts[row["bucket"] // HISTOGRAM_BUCKETS_PER_BAR] += row["n"]
    if not counts:
        return {"edges_ms": [], "counts": []}
    low, high = min(counts), max(counts)
    bars = range(low, high + 1)
    return {
        "edges_ms": [
            round(2 ** (bar * HISTOGRAM_BUCKETS_PER_BAR / stats.BUCKETS_PER_DOUBLING) / 1000, 4)
            for bar in bars
        ],
        "counts": [counts.get(bar, 0) for bar in bars],
    }


def series(window_, vhost=None, service=None, exact=None):
    """Percentiles, calls and timeouts per step: {"t" (epoch s), "p50"...,"calls_per_s"}."""
    exact = is_exact(window_, vhost, service) if exact is None else exact
    step_us = window_.step_s * 1_000_000
    if not exact:
        step_us = max(step_us, 60_000_000)  # roll-ups know whole minutes only
    first = window_.since_us - window_.since_us % step_us
    steps = list(range(first, window_.until_us, step_us))
    index_of = {start: index for index, start in enumerate(steps)}
    calls = [0] * len(steps)
    timeouts = [0] * len(steps)
    per_step = [None] * len(steps)
    if exact:
        per_step = [[] for _ in steps]
        rows = _flows(window_, vhost, service).values_list(
            "requested_at", "status", "late", "latency_ms"
        )
        for requested_at, status, late, latency in rows.iterator(chunk_size=2000):
            at = to_us(requested_at)
            index = index_of.get(at - at % step_us)
            if index is None:
                continue
            calls[index] += 1
            timeouts[index] += _is_timeout(status, late)
            if latency is not None and not late:
                per_step[index].append(latency)
        percentiles = {p: [] for p in PERCENTILES}
        for values in per_step:
            values.sort()
            for p in PERCENTILES:
                value = stats.percentile(values, p)
                percentiles[p].append(None if value is None else round(value, 3))
    else:
        for row in _minutes(ServiceMinute, window_, vhost, service).values(
            "minute", "calls", "timeouts"
        ):
            at = to_us(row["minute"])
            index = index_of.get(at - at % step_us)
            if index is not None:
                calls[index] += row["calls"]
                timeouts[index] += row["timeouts"]
        buckets = [defaultdict(int) for _ in steps]
        rows = _minutes(LatencyBucket, window_, vhost, service).values("minute", "bucket", "count")
        for row in rows.iterator(chunk_size=5000):
            at = to_us(row["minute"])
            index = index_of.get(at - at % step_us)
            if index is not None:
                buckets[index][row["bucket"]] += row["count"]
        percentiles = {p: [bucket_percentile(counts, p) for counts in buckets] for p in PERCENTILES}
    seconds = step_us / 1_000_000
    return {
        "t": [start / 1_000_000 for start in steps],
        **{f"p{p}": values for p, values in percentiles.items()},
        "calls_per_s": [round(count / seconds, 3) for count in calls],
        "timeouts": timeouts,
        "step_s": seconds,
    }


def recent_timeouts(window_, vhost=None, service=None, limit=20):
    """The newest calls of the window that got no answer in time (or a late one)."""
    flows = _flows(window_, vhost, service).filter(Q(status="timeout") | Q(late=True))
    return list(flows.order_by("-requested_at")[:limit])
