"""Accuracy against the wire: Warren's stamps beside lo:5672 captured by the kernel.

RPC calls with unique bodies run with the tap attached, twice: at a light,
steady rate, and as fast as the client goes with many calls in flight. A packet
capture of lo:5672 (benchmarks/wire.py; root) sees each client's publish and
each trace message reaching the tap's socket. Per traced publish, the error
splits in two: the broker's (client publish → its trace message on the wire,
which no tap can correct) and the tap's own (trace message on the wire →
Warren's stamp). Goal for the tap's own: median under 0.05 ms, p99 under 0.5 ms.
Resolution: the kernel's stamps are in nanoseconds, Warren stores microseconds,
so the tap's error reads in steps of 1 µs.
"""

import os
import statistics

from benchmarks import common, wire, wire_rpc
from benchmarks.keepup import TappedRun
from tracer.store.sql import us_from_db

GOAL_MEDIAN_MS = 0.05
GOAL_P99_MS = 0.5


def add_arguments(parser):
    parser.add_argument("--wire-calls", type=int, default=2000, help="calls per phase (wire)")
    parser.add_argument("--wire-rate", type=float, default=200.0, help="light phase, calls/s")


def run(options, out):
    if os.geteuid() != 0:
        raise common.BenchError("capturing lo:5672 needs root (CAP_NET_RAW)")
    calls = options.get("wire_calls") or 2000
    rate = options.get("wire_rate") or 200.0
    report = common.Report("wire")
    for phase, phase_rate, in_flight in (("light", rate, 1), ("maximum rate", 0.0, 32)):
        out(f"wire: {calls:,} calls, {phase}")
        capture = wire.WireCapture().start()
        try:
            with TappedRun(out, options.get("database_url")) as run_:
                answered = wire_rpc.calls(
                    run_.config.amqp_url(), run_.vhost, calls, phase_rate, in_flight=in_flight
                )
                run_.stored_when_steady(4 * len(answered), limit_s=120.0)
                rows = run_.counter.query(
                    "SELECT event, body, captured_at, stamp_error_us FROM tracer_message "
                    "WHERE vhost = ?",
                    (run_.vhost,),
                )
        finally:
            capture.stop()
        stamps = {(event, bytes(body)): us_from_db(at) for event, body, at, _ in rows}
        flagged = sum(1 for *_, error in rows if error)
        split = wire.split(capture.messages, stamps, answered)
        _report(report, phase, split, len(answered), capture, flagged)
    report.note(
        "tap error = Warren's stamp − the trace message's packet on lo (same kernel clock); "
        "broker error = that packet − the client's publish packet; 1 µs resolution"
    )
    return report


def _report(report, phase, split, calls, capture, flagged):
    tap = sorted(abs(value) for value in split.tap_ms)
    broker = sorted(split.broker_ms)
    if not tap:
        report.add(f"{phase}: traced publishes matched", "all", "0", ok=False)
        return
    median, p99 = statistics.median(tap), common.percentile(tap, 0.99)
    report.add(f"{phase}: calls answered", "", f"{calls:,}")
    report.add(
        f"{phase}: traced publishes matched on the wire",
        "all",
        f"{len(tap):,} of {2 * calls:,}",
        f"packets {capture.packets:,}, dropped by the capture {capture.kernel_drops}",
        ok=len(tap) == 2 * calls,
    )
    report.add(
        f"{phase}: tap's own error, median",
        f"< {GOAL_MEDIAN_MS} ms",
        f"{median:.4f} ms",
        f"broker's: {statistics.median(broker):.3f} ms",
        ok=median < GOAL_MEDIAN_MS,
    )
    report.add(
        f"{phase}: tap's own error, p99",
        f"< {GOAL_P99_MS} ms",
        f"{p99:.4f} ms",
        f"broker's: {common.percentile(broker, 0.99):.3f} ms",
        ok=p99 < GOAL_P99_MS,
    )
    report.add(f"{phase}: tap's own error, max", "", f"{tap[-1]:.4f} ms")
    report.add(
        f"{phase}: calls measured 0.00 with trace messages >= 0.05 ms apart",
        "0",
        f"{split.zero_but_not_on_wire}",
        f"sent in one segment by the broker: {split.zero_from_the_broker}",
        ok=split.zero_but_not_on_wire == 0,
    )
    report.add(f"{phase}: events capture flagged as possibly late", "", f"{flagged:,}")
