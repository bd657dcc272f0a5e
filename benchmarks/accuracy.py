"""Accuracy: each flow's end_to_end_ms against the client's own stopwatch.

At a steady 200 calls/s (tap attached), every client times its calls with
perf_counter from the moment the request's publish is written to the reply's
arrival in its callback. The tap's end_to_end_ms for the same correlation id (reply
delivered − requested, both stamped as the firehose frames arrive) is compared:
median and p99 of the absolute difference.
"""

import statistics

from benchmarks import common
from benchmarks.keepup import TappedRun
from benchmarks.load import RpcLoad

GOAL_MEDIAN_MS = 0.5
GOAL_P99_MS = 2.0


def add_arguments(parser):
    parser.add_argument("--rate", type=float, default=200.0, help="calls per second (accuracy)")
    parser.add_argument("--accuracy-seconds", type=float, default=20.0)


def run(options, out):
    rate = options.get("rate") or 200.0
    seconds = options.get("accuracy_seconds") or 20.0
    report = common.Report("accuracy")
    with TappedRun(out, options.get("database_url")) as run_:
        out(f"accuracy: {rate:.0f} calls/s for {seconds:.0f} s in {run_.vhost}")
        # A light load, not niced: the clients' stopwatches should not wait for a core.
        load = RpcLoad(
            run_.config.amqp_url(), run_.vhost, servers=2, clients=2, rate=rate, niceness=0
        )
        load.run(seconds, record=True)
        run_.drain()
        expected = len(load.timings) * common.EVENTS_PER_CALL
        run_.stored_when_steady(expected)
        rows = run_.counter.query(
            "SELECT correlation_id, end_to_end_ms FROM tracer_flow WHERE vhost = ?",
            (run_.vhost,),
        )
    measured = {correlation_id: e2e for correlation_id, e2e in rows if e2e is not None}
    differences = [
        abs(measured[correlation_id] - client_ms)
        for correlation_id, _, client_ms in load.timings
        if correlation_id in measured
    ]
    signed = [
        measured[correlation_id] - client_ms
        for correlation_id, _, client_ms in load.timings
        if correlation_id in measured
    ]
    client_ms = [timing[2] for timing in load.timings]
    median = statistics.median(differences) if differences else float("nan")
    p99 = common.percentile(differences, 0.99) if differences else float("nan")
    report.add("calls timed by the client", "", f"{len(load.timings):,}")
    report.add(
        "flows matched by correlation id",
        "all",
        f"{len(differences):,}",
        ok=len(differences) == len(load.timings) and differences != [],
    )
    report.add(
        "|end_to_end_ms − client| median",
        f"< {GOAL_MEDIAN_MS} ms",
        f"{median:.3f} ms",
        ok=median < GOAL_MEDIAN_MS,
    )
    report.add(
        "|end_to_end_ms − client| p99", f"< {GOAL_P99_MS} ms", f"{p99:.3f} ms", ok=p99 < GOAL_P99_MS
    )
    if client_ms:
        report.add(
            "client round trip median / p99",
            "",
            f"{statistics.median(client_ms):.3f} / {common.percentile(client_ms, 0.99):.3f} ms",
        )
    if signed:
        report.add(
            "end_to_end_ms − client, median (signed)", "", f"{statistics.median(signed):+.3f} ms"
        )
        # Which side the tail is on: below zero the client waited longer than the
        # broker's view (the client was slow to run), above it the tap's stamps.
        report.add(
            "end_to_end_ms − client, p1 / p99 (signed)",
            "",
            f"{common.percentile(signed, 0.01):+.3f} / {common.percentile(signed, 0.99):+.3f} ms",
        )
    report.note(f"achieved {load.calls / load.elapsed_s:,.0f} calls/s")
    return report
