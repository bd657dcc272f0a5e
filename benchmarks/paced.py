"""Keep-up at a steady pace: synthetic calls released into the tap's vhost.

`bench keep-up --flows-per-s 1000 [--seconds 30] [--compare export|scrape]`

The live RPC workload tops out below 1,000 calls a second on a small machine,
so here the four events of each call (benchmarks/synthetic.py) are staged in
the tap's scratch vhost before tracing is on and released by the broker into
the trace exchange at `--flows-per-s` calls a second (synthetic.stage), while
the tap runs as in production (capture, spool, feeder, writer, and its export
child). Tap queue depth is sampled four times a second during the release;
then: drain (until the tap queue is empty), stored == emitted (every event
released), dropped (the tap's bounded queue), and the CPU of the tap's
processes (its export child included) from the release's start until 20 s
after its end (calls settled and exported), per event.

`--compare` runs it twice, side by side in the same run:
- export: span export off, then on (WARREN_OTLP_ENDPOINT at a real OTLP/HTTP
  receiver that decodes every request with opentelemetry-proto); with it, the
  spans received, the call spans (one a flow) against the flows completed, and
  the spans lost as the exporter counted them;
- scrape: no scrape, then /metrics scraped every 5 s (`bench export
  --export-worker scrape` on the tap's database, seeded with 1,000 services'
  totals): the scrape times while the tap works.
WARREN_RPC_TIMEOUT is 2 s in both runs, so calls settle (and go out) soon after.
"""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from benchmarks import common, synthetic
from benchmarks.otlp_receiver import Receiver

VARIANTS = {
    "export": ("span export off", "span export on"),
    "scrape": ("no scrape", "/metrics every 5 s"),
}
SCRAPE_EVERY_S = 5.0
TAP_START_S = 20.0  # the tap starts, connects and switches tracing on well within this
PUBLISH_MARGIN = 0.6  # staging may publish slower than the calibration did
EXPORT_WAIT_S = 90.0
CPU_WINDOW_AFTER_S = 20.0  # past the release: settled (2 s + 5 s) and exported
ROOT = Path(__file__).resolve().parent.parent


def run(options: dict, out) -> common.Report:
    flows_per_s = float(options["flows_per_s"])
    seconds = options.get("seconds") or 60.0
    compare = options.get("compare")
    report = common.Report(f"keep-up at {flows_per_s:,.0f} synthetic calls/s")
    if compare is None:
        one = paced_run(options, out, variant=False)
        _single(report, one)
    else:
        names = VARIANTS[compare]
        base = paced_run(options, out, variant=False, compare=compare, label=names[0])
        other = paced_run(options, out, variant=True, compare=compare, label=names[1])
        for row in side_by_side(compare, base, other):
            report.add(*row)
    report.note(
        f"{seconds:.0f} s of release, 4 events a call; tap queue depth sampled 4 times a second"
    )
    return report


def paced_run(options: dict, out, variant: bool, compare: str | None = None, label: str = ""):
    """One run; with `variant`, span export on (compare=export) or scrapes (compare=scrape)."""
    from benchmarks.keepup import TappedRun

    flows_per_s = float(options["flows_per_s"])
    seconds = options.get("seconds") or 60.0
    calls = max(1, round(flows_per_s * seconds))
    receiver = Receiver(keep_spans=False).start() if variant and compare == "export" else None
    plan: list[synthetic.Staged] = []

    def stage(run_) -> None:
        url = run_.config.amqp_url()
        rate = synthetic.publish_rate(url, run_.vhost)
        lead_s = 4 * calls / (PUBLISH_MARGIN * rate) + TAP_START_S
        out(f"keep-up{' (' + label + ')' if label else ''}: staging {4 * calls:,} events "
            f"(publishing at ~{rate:,.0f}/s), released from {lead_s:.0f} s on\n")  # fmt: skip
        plan.append(synthetic.stage(url, run_.vhost, calls, flows_per_s, lead_s))

    endpoint = receiver.endpoint if receiver is not None else None
    scraper = None
    try:
        with (
            common.environment(WARREN_RPC_TIMEOUT="2s", WARREN_OTLP_ENDPOINT=endpoint),
            TappedRun(out, options.get("database_url"), before_tap=stage) as run_,
        ):
            staged = plan[0]
            if variant and compare == "scrape":
                scraper = Scraper(run_.url).start()
            if time.monotonic() > staged.start:
                raise common.BenchError(
                    "the first events were due before the tap was consuming "
                    "(staging was slower than planned): try fewer --seconds"
                )
            time.sleep(max(0.0, staged.start - time.monotonic()))
            run_.sample()
            cpu_before = common.cpu_seconds(run_.tap.pid)
            time.sleep(max(0.0, staged.end - time.monotonic()))
            # The last events expire within a few milliseconds of being due.
            left = common.wait_until(
                lambda: synthetic.staged_left(run_.config.amqp_url(), run_.vhost) == 0 or None,
                10,
                every=0.01,
            )
            drain_s = run_.drain()
            run_.stop_sampling()
            left = synthetic.staged_left(run_.config.amqp_url(), run_.vhost)
            stored = run_.stored_when_steady(staged.events, limit_s=120.0)
            flows = _count(run_, "SELECT count(*) FROM tracer_flow WHERE status = 'complete'")
            released_s = _captured_span_s(run_)
            exported = _wait_exported(run_, receiver, flows) if receiver is not None else None
            # Span export happens once calls settle (the RPC timeout and 5 s on):
            # CPU is counted until then in both runs.
            time.sleep(max(0.0, staged.end + CPU_WINDOW_AFTER_S - time.monotonic()))
            cpu_after = common.cpu_seconds(run_.tap.pid)
            dropped = run_.dropped()
            scrapes = scraper.stop() if scraper is not None else None
    finally:
        if scraper is not None:
            scraper.kill()
        if receiver is not None:
            receiver.stop()
    depths = run_.depths or [0]
    return {
        "events": staged.events,
        "left": left,
        "stored": stored,
        "flows": flows,
        "calls": calls,
        "seconds": seconds,
        "p50": common.percentile(depths, 0.5),
        "p99": common.percentile(depths, 0.99),
        "max": max(depths),
        "drain": drain_s,
        "dropped": dropped,
        "cpu_us": (cpu_after - cpu_before) / max(staged.events, 1) * 1e6,
        "released_per_s": staged.events / released_s if released_s else 0.0,
        "rss": max(run_.rss or [0]),
        "exported": exported,
        "scrapes": scrapes,
    }


def _count(run_, sql: str) -> int:
    return int(run_.counter.query(sql)[0][0] or 0)


def _captured_span_s(run_) -> float:
    """Seconds from the first event the tap captured to the last (its own stamps)."""
    sql = "SELECT min(captured_at), max(captured_at) FROM tracer_message"
    first, last = run_.counter.query(sql)[0]
    if first is None or last is None:
        return 0.0
    if isinstance(first, str):  # SQLite: Django's naive UTC text
        first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
    return (last - first).total_seconds()


def _wait_exported(run_, receiver: Receiver, flows: int) -> dict:
    """Until the receiver holds a call span per completed flow (or the exporter
    counted the rest lost, or EXPORT_WAIT_S): settling takes the RPC timeout and
    five seconds past each call."""
    sql = "SELECT coalesce(sum(done), 0), coalesce(sum(lost), 0) FROM export_flowfeed "
    sql += "WHERE name = 'otlp'"
    deadline = time.monotonic() + EXPORT_WAIT_S
    while True:
        done, lost = (int(v or 0) for v in run_.counter.query(sql)[0])
        if receiver.call_spans >= flows or done + lost >= 3 * flows:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return {
        "spans": receiver.span_count,
        "call_spans": receiver.call_spans,
        "requests": receiver.requests,
        "done": done,
        "lost": lost,
    }


class Scraper:
    """`bench export --export-worker scrape` on the tap's database: /metrics every 5 s."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> "Scraper":
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "bench", "export", "--export-worker", "scrape"],
            cwd=ROOT,
            env=dict(os.environ, DATABASE_URL=self.database_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return self

    def stop(self) -> dict:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        stdout, stderr = self.process.communicate(timeout=60)
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if self.process.returncode != 0 or not lines:
            raise common.BenchError(f"the scrape worker failed:\n{stdout[-2000:]}{stderr[-2000:]}")
        return json.loads(lines[-1])

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def _drained(one: dict) -> str:
    return "not within 60 s" if one["drain"] is None else f"{one['drain']:.2f} s"


def _single(report: common.Report, one: dict) -> None:
    for row in _rows(one, None, ""):
        report.add(*row)


def _rows(one: dict, base: dict | None, base_name: str) -> list[tuple]:
    """The keep-up figures of `one`, `base`'s beside them."""

    def beside(text: str) -> str:
        return f"{base_name}: {text}" if base is not None else ""

    from benchmarks.keepup import GOAL_DEPTH_P99, GOAL_DRAIN_S

    b = base or one
    return [
        ("events released", "", f"{one['events']:,}", beside(f"{b['events']:,}")),
        (
            f"events/s captured, first to last "
            f"({4 * one['calls'] / max(one['seconds'], 1e-9):,.0f} planned)",
            "",
            f"{one['released_per_s']:,.0f}",
            beside(f"{b['released_per_s']:,.0f}"),
        ),
        ("tap queue depth p50", "", f"{one['p50']:,}", beside(f"{b['p50']:,}")),
        (
            "tap queue depth p99",
            f"< {GOAL_DEPTH_P99:,}",
            f"{one['p99']:,}",
            beside(f"{b['p99']:,}"),
            one["p99"] < GOAL_DEPTH_P99,
        ),
        ("tap queue depth max", "", f"{one['max']:,}", beside(f"{b['max']:,}")),
        (
            "drain after the release",
            f"<= {GOAL_DRAIN_S:.0f} s",
            _drained(one),
            beside(_drained(b)),
            one["drain"] is not None and one["drain"] <= GOAL_DRAIN_S,
        ),
        (
            "stored == emitted",
            "yes",
            f"{one['stored']:,} == {one['events']:,}",
            beside(f"{b['stored']:,} == {b['events']:,}"),
            one["stored"] == one["events"] and one["left"] == 0,
        ),
        (
            "flows completed",
            f"= {one['calls']:,}",
            f"{one['flows']:,}",
            beside(f"{b['flows']:,}"),
            one["flows"] == one["calls"],
        ),
        (
            "events dropped",
            "0",
            f"{one['dropped']:,}",
            beside(f"{b['dropped']:,}"),
            one["dropped"] == 0,
        ),  # fmt: skip
        (
            "tap CPU per event (its processes, export too)",
            "",
            f"{one['cpu_us']:.1f} µs",
            beside(f"{b['cpu_us']:.1f} µs"),
        ),  # fmt: skip
        ("tap peak memory (RSS)", "", f"{one['rss']:.0f} MB", beside(f"{b['rss']:.0f} MB")),
    ]


def side_by_side(compare: str, base: dict, other: dict) -> list[tuple]:
    off_name, on_name = VARIANTS[compare]
    rows = [(f"{figure} ({on_name})", *rest) for figure, *rest in _rows(other, base, off_name)]
    if compare == "export":
        sent = other["exported"]
        rows += [
            (
                "call spans received == flows completed",
                "yes",
                f"{sent['call_spans']:,} == {other['flows']:,}",
                f"{sent['spans']:,} spans in {sent['requests']:,} requests",
                sent["call_spans"] == other["flows"] and other["flows"] > 0,
            ),
            (
                "spans the exporter counted sent / lost",
                "lost 0",
                f"{sent['done']:,} / {sent['lost']:,}",
                f"received {sent['spans']:,}",
                sent["lost"] == 0 and sent["done"] == sent["spans"],
            ),
        ]
    else:
        scrapes = other["scrapes"]["times_ms"] or [0.0]
        first, times = scrapes[0], scrapes[1:] or scrapes
        rows.append(
            (
                f"/metrics at 1,000 services while the tap works ({len(times)} scrapes)",
                "< 200 ms",
                f"median {common.percentile(times, 0.5):.0f} ms, max {max(times):.0f} ms",
                f"first, in a fresh process: {first:.0f} ms; "
                f"{other['scrapes']['bytes'] / 1024:,.0f} KiB",
                max(times) < 200,
            )
        )
    return rows
