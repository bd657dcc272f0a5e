"""/metrics: the Prometheus text exposition of what Warren has stored.

Counters never come from the process that answers: RPC counters are running
totals (RpcTotals) that `fold_settled` adds settled flows to, exactly once,
tap counters are summed over the stored tap sessions (and, for sessions that
retention has pruned, their last counters as TapSessionTotals kept them), and
replay figures are read from the replay jobs. So every Warren process answers
the same, a restart resets nothing, and a scrape writes nothing.

Latency histograms use fixed buckets from 1 ms to 60 s whose edges are the
Prometheus `le` labels exactly, so `histogram_quantile` over them is as close to
the truth as one bucket. A late reply is a timeout and never enters a histogram.
"""

import bisect
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import accumulate
from typing import Any, TypeAlias

from django.conf import settings
from django.db.models import Sum, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from tracer.export import feed
from tracer.export.models import FlowFeed, RpcTotals, TapSessionTotals
from tracer.models import Flow, TapSession
from tracer.store.status import alive_sessions

METRICS_FEED = "metrics"
KINDS = ("end_to_end", "queue_wait", "service")
# Upper bounds (le) in seconds: milliseconds to a minute, +Inf after the last.
LATENCY_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
_EDGES_MS = tuple(edge * 1000.0 for edge in LATENCY_BUCKETS_S)
TAP_COUNTERS = ("received", "stored", "dropped", "duplicates", "backlog")
TAP_STATES = {"received": "received", "stored": "stored", "dropped": "dropped"}
TAP_STATES["duplicates"] = "duplicate"

# Asks the broker which nodes trace each vhost (rabbit.cluster.tracing_map).
TracingAsk: TypeAlias = Callable[[Sequence[str]], tuple[Mapping[str, Mapping[str, str]], str]]
ExtraCollector: TypeAlias = Callable[[], Iterable[Metric]]
_extra: list[ExtraCollector] = []


def register(collect: ExtraCollector) -> None:
    """Adds another app's figures to /metrics (replay registers its jobs)."""
    if collect not in _extra:
        _extra.append(collect)


# --- folding settled flows into running totals ------------------------------------


def metrics_settle_s() -> float:
    """Twice the RPC timeout (at least ten seconds past it): a reply that comes
    later than that still makes a timeout, but is not counted as a late reply."""
    timeout = float(settings.WARREN_RPC_TIMEOUT)
    return timeout + max(timeout, 10.0)


def bucket_index(ms: float) -> int:
    """The first bucket whose upper bound (le) is at least ms; len(edges) = +Inf."""
    return bisect.bisect_left(_EDGES_MS, ms)


def flow_latencies(flow: Flow) -> dict[str, float]:
    """A settled, answered flow's figures per kind, in milliseconds.

    End to end is until the reply's delivery; where that delivery is not traced
    (direct reply-to) it is until the reply's publish, the last moment known.
    """
    figures = {
        "end_to_end": flow.end_to_end_ms if flow.end_to_end_ms is not None else flow.latency_ms,
        "queue_wait": flow.queue_wait_ms,
        "service": flow.service_ms,
    }
    return {kind: max(float(ms), 0.0) for kind, ms in figures.items() if ms is not None}


def _empty_histogram() -> dict[str, Any]:
    return {"counts": [0] * (len(LATENCY_BUCKETS_S) + 1), "sum_s": 0.0}


def _add(totals: RpcTotals, flow: Flow) -> None:
    totals.calls += 1
    if feed.timed_out(flow):
        totals.timeouts += 1
        totals.late_replies += 1 if flow.late else 0
        return
    for kind, ms in flow_latencies(flow).items():
        histogram = totals.latency.setdefault(kind, _empty_histogram())
        histogram["counts"][bucket_index(ms)] += 1
        histogram["sum_s"] += ms / 1000.0


def fold_settled(now: datetime | None = None, settle_s: float | None = None) -> int:
    """Adds the flows settled since the last fold to RpcTotals; returns how many."""
    until = feed.horizon(metrics_settle_s() if settle_s is None else settle_s, now)
    folded = 0
    while True:
        # A look without the lock first: an idle Warren writes nothing.
        seen = FlowFeed.objects.filter(name=METRICS_FEED).first() or FlowFeed(name=METRICS_FEED)
        if not feed.settled_after(seen, until, limit=1):
            return folded
        with feed.claimed(METRICS_FEED) as position:
            flows = feed.settled_after(position, until)
            counted = [flow for flow in flows if flow.service]
            keys = {(flow.vhost, flow.service) for flow in counted}
            totals = {
                (row.vhost, row.service): row
                for row in RpcTotals.objects.filter(
                    service__in={service for _, service in keys}
                ).filter(vhost__in={vhost for vhost, _ in keys})
                if (row.vhost, row.service) in keys
            }
            for flow in counted:
                key = (flow.vhost, flow.service)
                if key not in totals:
                    totals[key] = RpcTotals(vhost=flow.vhost, service=flow.service, latency={})
                _add(totals[key], flow)
            for row in totals.values():
                if row.pk is None or (row.vhost, row.service) in keys:
                    row.save()
            feed.advance(position, flows, done=len(counted))
        folded += len(counted)
        if len(flows) < feed.BATCH:
            return folded


def mirror_tap_sessions() -> None:
    """Copies each stored tap session's counters into TapSessionTotals."""
    now = timezone.now()
    kept = {row.session_id: row for row in TapSessionTotals.objects.all()}
    for session in TapSession.objects.all().only("id", *TAP_COUNTERS):
        values = {name: getattr(session, name) for name in TAP_COUNTERS}
        row = kept.get(session.id)
        if row is None:
            TapSessionTotals.objects.create(session_id=session.id, updated_at=now, **values)
        elif any(getattr(row, name) < value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, max(getattr(row, name), value))
            row.updated_at = now
            row.save()


# --- what a scrape shows -----------------------------------------------------------


RPC_HELP = {
    "warren_rpc_calls": ("counter", "RPC calls made (requests with reply_to), once settled."),
    "warren_rpc_timeouts": (
        "counter",
        "RPC calls without a reply within WARREN_RPC_TIMEOUT (late replies included).",
    ),
    "warren_rpc_late_replies": (
        "counter",
        "RPC calls answered after WARREN_RPC_TIMEOUT (counted as timeouts too).",
    ),
    "warren_rpc_latency_seconds": (
        "histogram",
        "RPC latency of calls answered in time: end_to_end (request publish to reply "
        "delivery), queue_wait (request publish to delivery), service (request delivery "
        "to reply publish).",
    ),
}
_LE = [repr(float(edge)) for edge in LATENCY_BUCKETS_S] + ["+Inf"]
RPC_COLUMNS = ("vhost", "service", "calls", "timeouts", "late_replies", "latency")
# (vhost, service, calls, timeouts, late replies, latency: as stored (JSON text) or parsed)
RpcRow: TypeAlias = tuple[str, str, int, int, int, str | dict[str, Any]]
RpcLines: TypeAlias = tuple[bytes, bytes, bytes, bytes]
# Each service's lines as last written, with the stored values they were written
# from: a scrape reads every row but writes only the services whose totals moved
# since the last one. The answer is the same as writing all (a function of the
# rows read), so processes still agree; past this many services nothing is kept.
RENDERED_ROWS_MAX = 20_000
_rendered: dict[tuple[str, str], tuple[tuple[int, int, int, Any], RpcLines]] = {}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def rpc_rows() -> Iterator[RpcRow]:
    """Every (vhost, service)'s running totals as plain tuples, one query; the
    histograms as their stored JSON text, parsed only where they changed."""
    rows = (
        RpcTotals.objects.order_by("vhost", "service")
        .annotate(latency_text=Cast("latency", TextField()))
        .values_list(*RPC_COLUMNS[:-1], "latency_text")
    )
    yield from rows.iterator(chunk_size=2000)


def _render(
    vhost: str, service: str, calls: int, timeouts: int, late: int, latency: str | dict[str, Any]
) -> RpcLines:
    histograms = json.loads(latency) if isinstance(latency, str) else latency
    key = f'service="{_label(service)}",vhost="{_label(vhost)}"'
    written = []
    for kind in KINDS:
        histogram = histograms.get(kind) or _empty_histogram()
        labels = f'{key},kind="{kind}"'
        running = list(accumulate(histogram["counts"]))
        # An f-string a line in one comprehension: the quickest way measured.
        written += [
            f'warren_rpc_latency_seconds_bucket{{{labels},le="{le}"}} {count}\n'
            for le, count in zip(_LE, running, strict=True)
        ]
        sum_s = float(histogram["sum_s"])
        written.append(f"warren_rpc_latency_seconds_count{{{labels}}} {running[-1]}\n")
        written.append(f"warren_rpc_latency_seconds_sum{{{labels}}} {sum_s!r}\n")
    return (
        f"warren_rpc_calls_total{{{key}}} {calls}\n".encode(),
        f"warren_rpc_timeouts_total{{{key}}} {timeouts}\n".encode(),
        f"warren_rpc_late_replies_total{{{key}}} {late}\n".encode(),
        "".join(written).encode(),
    )


def rpc_text(rows: Iterable[RpcRow] | None = None) -> list[bytes]:
    """The per-service families in the text format (pieces to join), written here rather than by
    prometheus-client's generic writer: at 1,000 services they are some 57,000
    samples, which that writer takes seconds over (bench export). What it writes
    parses to exactly what prometheus-client makes of the same rows
    (rpc_families, compared in tests/export/test_metrics.py)."""
    global _rendered
    kept = _rendered
    fresh: dict[tuple[str, str], tuple[tuple[int, int, int, Any], RpcLines]] = {}
    written: list[RpcLines] = []
    for vhost, service, *values in rpc_rows() if rows is None else rows:
        stored = tuple(values)
        seen = kept.get((vhost, service))
        if seen is not None and seen[0] == stored:
            lines = seen[1]
        else:
            lines = _render(vhost, service, *values)  # type: ignore[arg-type]
        fresh[(vhost, service)] = (stored, lines)  # type: ignore[assignment]
        written.append(lines)
    _rendered = fresh if len(fresh) <= RENDERED_ROWS_MAX else {}
    parts = []
    for index, (name, (kind, words)) in enumerate(RPC_HELP.items()):
        suffix = "_total" if kind == "counter" else ""
        parts.append(f"# HELP {name}{suffix} {words}\n# TYPE {name}{suffix} {kind}\n".encode())
        parts.extend(lines[index] for lines in written)
    return parts


def rpc_families(rows: Iterable[RpcRow]) -> Iterator[Metric]:
    """The same families as rpc_text, made by prometheus-client (the format's
    source of truth; slow at thousands of services, so only tests use it)."""
    counters = {
        name: CounterMetricFamily(name, RPC_HELP[name][1], labels=["service", "vhost"])
        for name in ("warren_rpc_calls", "warren_rpc_timeouts", "warren_rpc_late_replies")
    }
    latency = HistogramMetricFamily(
        "warren_rpc_latency_seconds",
        RPC_HELP["warren_rpc_latency_seconds"][1],
        labels=["service", "vhost", "kind"],
    )
    for vhost, service, n_calls, n_timeouts, n_late, stored in rows:
        histograms = json.loads(stored) if isinstance(stored, str) else stored
        for name, value in zip(counters, (n_calls, n_timeouts, n_late), strict=True):
            counters[name].add_metric([service, vhost], value)
        for kind in KINDS:
            histogram = histograms.get(kind) or _empty_histogram()
            running = list(accumulate(histogram["counts"]))
            latency.add_metric(
                [service, vhost, kind],
                list(zip(_LE, running, strict=True)),
                float(histogram["sum_s"]),
            )
    yield from counters.values()
    yield latency


def rpc_metrics() -> Iterator[Metric]:
    """How far the RPC counters have got (the families themselves: rpc_text)."""
    position = FlowFeed.objects.filter(name=METRICS_FEED).first()
    counted = GaugeMetricFamily(
        "warren_rpc_counted_until_timestamp_seconds",
        "RPC counters include the calls made up to this time (calls settle after "
        "twice WARREN_RPC_TIMEOUT).",
    )
    if position is not None and position.after_started_at is not None:
        counted.add_metric([], position.after_started_at.timestamp())
    yield counted


def tap_metrics(tracing: TracingAsk) -> Iterator[Metric]:
    live = TapSession.objects.aggregate(**{name: Sum(name) for name in TAP_COUNTERS})
    pruned = TapSessionTotals.objects.exclude(
        session_id__in=TapSession.objects.values("id")
    ).aggregate(**{name: Sum(name) for name in TAP_COUNTERS})
    totals = {name: (live[name] or 0) + (pruned[name] or 0) for name in TAP_COUNTERS}
    events = CounterMetricFamily(
        "warren_tap_events",
        "Trace events the tap received, stored, dropped (the tap queue's bound or a "
        "full spool) and recognised as duplicates, over all tap runs.",
        labels=["state"],
    )
    for name, state in TAP_STATES.items():
        events.add_metric([state], totals[name])
    yield events
    backlog = CounterMetricFamily(
        "warren_tap_backlog_events",
        "Events that waited in the tap queue while capture was away (kept out of latency).",
    )
    backlog.add_metric([], totals["backlog"])
    yield backlog
    alive = alive_sessions()
    gauges = (
        ("warren_tap_running", "Tap processes running now.", float(len(alive))),
        (
            "warren_tap_lag_seconds",
            "How far capture is behind the broker now (the oldest unread event's age).",
            max((s.lag_ms for s in alive), default=0.0) / 1000.0,
        ),
        (
            "warren_tap_index_lag_seconds",
            "How far indexing is behind capture now (the oldest spooled frame's age).",
            max((s.index_lag_s for s in alive), default=0.0),
        ),
        (
            "warren_tap_index_paused",
            "1 while indexing pauses because the machine is busy, else 0.",
            float(any(s.index_paused for s in alive)),
        ),
        (
            "warren_tap_queue_depth",
            "Events waiting in the tap queues now.",
            float(sum(s.queue_depth for s in alive)),
        ),
        (
            "warren_tap_spool_bytes",
            "Bytes in the capture spools now.",
            float(sum(s.spool_bytes for s in alive)),
        ),
    )
    for name, text, value in gauges:
        gauge = GaugeMetricFamily(name, text)
        gauge.add_metric([], value)
        yield gauge
    connected = GaugeMetricFamily(
        "warren_tap_connected", "1 while the tap reads the vhost's tap queue.", labels=["vhost"]
    )
    vhosts: set[str] = set()
    last = alive or list(TapSession.objects.order_by("-heartbeat_at")[:1])
    for session in last:
        vhosts.update(session.vhosts or ())
    reading: dict[str, bool] = {}
    for session in alive:
        for vhost, state in (session.connected or {}).items():
            reading[vhost] = reading.get(vhost, False) or bool(state)
    for vhost, reads in sorted(reading.items()):
        connected.add_metric([vhost], 1.0 if reads else 0.0)
    yield connected
    states, problem = tracing(sorted(vhosts))
    tracing_state = GaugeMetricFamily(
        "warren_tap_tracing",
        "Tracing of each traced vhost on each node as the broker tells it "
        "(1 for the state it is in: on, off or unreachable).",
        labels=["vhost", "node", "state"],
    )
    for vhost, nodes in sorted(states.items()):
        for node, state in sorted(nodes.items()):
            for possible in ("on", "off", "unreachable"):
                tracing_state.add_metric([vhost, node, possible], 1.0 if state == possible else 0.0)
    yield tracing_state
    asked = GaugeMetricFamily(
        "warren_broker_tracing_known",
        "1 when the broker could be asked which nodes trace, 0 when it could not.",
    )
    asked.add_metric([], 0.0 if problem else 1.0)
    yield asked


def otlp_metrics() -> Iterator[Metric]:
    from tracer.export.otlp import OTLP_FEED

    position = FlowFeed.objects.filter(name=OTLP_FEED).first()
    spans = CounterMetricFamily(
        "warren_otlp_spans",
        "Flow spans sent to WARREN_OTLP_ENDPOINT, and those lost because the receiver "
        "did not take them.",
        labels=["state"],
    )
    spans.add_metric(["exported"], position.done if position else 0)
    spans.add_metric(["lost"], position.lost if position else 0)
    yield spans


class WarrenCollector(Collector):
    """Everything /metrics shows, read from the database at each scrape."""

    def __init__(self, tracing: TracingAsk):
        self.tracing = tracing

    def collect(self) -> Iterable[Metric]:
        # The per-service families come first, from rpc_text().
        yield from rpc_metrics()
        yield from tap_metrics(self.tracing)
        yield from otlp_metrics()
        for collect in _extra:
            yield from collect()


def exposition(tracing: TracingAsk) -> bytes:
    """The Prometheus text exposition (format 0.0.4, which every Prometheus reads)."""
    # One copy of the whole: each service's lines are kept as bytes already.
    return b"".join([*rpc_text(), generate_latest(WarrenCollector(tracing))])
