"""Export: /metrics at 1,000 services, a 1,000,000-row export's memory, and the
tap's keep-up with span export off and on, and without and with a /metrics
scrape every 5 s, side by side (`--export-parts` picks some of these).

- /metrics: a scratch SQLite database with running totals for 1,000 services
  (4 vhosts x 250, three histograms each), 50 tap sessions and 100 replay
  jobs; the median of 15 scrapes through Django's test client (URL routing,
  middleware, the access check, the collector, the text exposition), each
  after every service's totals moved (one UPDATE, not timed) and again with
  nothing moved; beside them, the same rows read by a plain query, and with
  each histogram parsed: the least a fresh answer has to do.
- A 1,000,000-row export: that many messages (200-byte bodies) in a scratch
  database, streamed as CSV and as JSON Lines with bodies through the test
  client, the bytes counted and thrown away; the worker's resident memory is
  sampled four times a second and printed at each 100,000 rows.
- Keep-up: bench keep-up's paced mode (benchmarks/paced.py) at 1,000 synthetic
  calls a second for `--export-seconds`, twice for each comparison: span
  export off and on (a real OTLP/HTTP receiver), then no scrape and a scrape
  of /metrics every 5 s (1,000 services seeded in the tap's database).

The first two run in a worker process (`bench export --export-worker`, its
DATABASE_URL set to the scratch database) so that Django talks to it.
"""

import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks import common, paced

GOAL_METRICS_MS = 200
KEEPUP_FLOWS_PER_S = 1000.0
PARTS = ("metrics", "files", "keep-up")
SERVICES = 1000
EXPORT_ROWS = 1_000_000
ROOT = Path(__file__).resolve().parent.parent


def add_arguments(parser):
    parser.add_argument("--export-rows", type=int, default=EXPORT_ROWS, help="(export)")
    parser.add_argument("--export-seconds", type=float, default=30.0, help="(export) keep-up")
    parser.add_argument(
        "--export-parts",
        default="metrics,files,keep-up",
        help="(export) which parts: metrics, files, keep-up (comma-separated)",
    )
    parser.add_argument(
        "--export-worker", choices=["metrics", "files", "scrape"], help="(internal)"
    )


def run(options, out):
    if options.get("export_worker"):
        return _worker(options, out)
    parts = {part.strip() for part in (options.get("export_parts") or "").split(",")}
    unknown = parts - set(PARTS)
    if unknown:
        raise common.BenchError(f"--export-parts: unknown {', '.join(sorted(unknown))}")
    report = common.Report("export")
    if "metrics" in parts:
        with common.scratch_database() as url:
            out("export: /metrics at 1,000 services\n")
            figures = _in_worker(url, "metrics", options)
        _metrics_rows(report, figures)
    if "files" in parts:
        _files_rows(report, options, out)
    if "keep-up" in parts:
        _keepup_rows(report, options, out)
    report.note(f"load average {common.load_average()}")
    return report


def _metrics_rows(report, figures):
    reference = (
        f"the same rows by a plain query: {figures['plain_ms']:.1f} ms; "
        f"with each histogram parsed: {figures['parsed_ms']:.1f} ms"
    )
    report.add(
        f"/metrics at {SERVICES:,} services, every service changed (median of 15)",
        f"< {GOAL_METRICS_MS} ms",
        f"{figures['changed_ms']:.0f} ms",
        reference,
        ok=figures["changed_ms"] < GOAL_METRICS_MS,
    )
    report.add(
        f"/metrics at {SERVICES:,} services, none changed (median of 15)",
        f"< {GOAL_METRICS_MS} ms",
        f"{figures['steady_ms']:.0f} ms",
        f"{figures['queries']} queries a scrape; {figures['samples']:,} samples, "
        f"{figures['bytes'] / 1024:,.0f} KiB",
        ok=figures["steady_ms"] < GOAL_METRICS_MS,
    )


def _files_rows(report, options, out):
    rows = options.get("export_rows") or EXPORT_ROWS
    with common.scratch_database() as url:
        out(f"export: {rows:,} rows\n")
        figures = _in_worker(url, "files", options)
    for kind in ("csv", "jsonl"):
        one = figures[kind]
        report.add(
            f"{rows:,}-row export, {one['name']}",
            "constant memory",
            f"peak RSS {one['peak_mb']:.0f} MB",
            f"{one['start_mb']:.0f} MB before; at each 100k rows: {one['steps']}; "
            f"{one['mb'] / 1024:,.1f} GiB in {one['seconds']:.0f} s",
        )


def _keepup_rows(report, options, out):
    """The tap at 1,000 synthetic calls a second: span export off and on, then
    without and with a /metrics scrape every 5 s (benchmarks/paced.py)."""
    paced_options = dict(
        options, flows_per_s=KEEPUP_FLOWS_PER_S, seconds=options.get("export_seconds") or 30.0
    )
    for compare in ("export", "scrape"):
        names = paced.VARIANTS[compare]
        base = paced.paced_run(paced_options, out, False, compare, names[0])
        other = paced.paced_run(paced_options, out, True, compare, names[1])
        for row in paced.side_by_side(compare, base, other):
            report.add(*row)


def _in_worker(url, part, options):
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "bench",
            "export",
            "--export-worker",
            part,
            "--export-rows",
            str(options.get("export_rows") or EXPORT_ROWS),
        ],
        cwd=ROOT,
        env=dict(os.environ, DATABASE_URL=url),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise common.BenchError(
            f"the {part} worker failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    line = next(line for line in reversed(done.stdout.splitlines()) if line.startswith("{"))
    return json.loads(line)


class _Printed:
    def render(self):
        return ""


def _worker(options, out):
    part = options["export_worker"]
    if part == "metrics":
        figures = _metrics()
    elif part == "scrape":
        figures = _scrape_every(paced.SCRAPE_EVERY_S)
    else:
        figures = _files(options.get("export_rows") or EXPORT_ROWS)
    sys.stdout.write(json.dumps(figures) + "\n")
    return _Printed()


def _client():
    from django.contrib.auth.models import User
    from django.test import Client

    user = User.objects.create_superuser(
        f"bench-{secrets.token_hex(3)}", "", secrets.token_urlsafe(20)
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


def _seed_services():
    """Running totals of 1,000 services (4 vhosts x 250, three histograms each)."""
    from tracer.export.metrics import KINDS, LATENCY_BUCKETS_S
    from tracer.export.models import RpcTotals

    width = len(LATENCY_BUCKETS_S) + 1
    RpcTotals.objects.bulk_create(
        RpcTotals(
            vhost=f"vhost-{n % 4}",
            service=f"orders.service-{n:04d}",
            calls=1_000_000 + n,
            timeouts=n,
            late_replies=n // 10,
            latency={
                kind: {"counts": [n + i for i in range(width)], "sum_s": 123.4} for kind in KINDS
            },
        )
        for n in range(SERVICES)
    )


def _metrics():
    from django.db import connection
    from django.db.models import F
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from replay.models import ReplayJob
    from tracer.export.models import RpcTotals
    from tracer.models import TapSession

    now = timezone.now()
    _seed_services()
    TapSession.objects.bulk_create(
        TapSession(pid=n, started_at=now, heartbeat_at=now, ended_at=now, received=n * 1000)
        for n in range(50)
    )
    ReplayJob.objects.bulk_create(
        ReplayJob(status="done", total=10, sent=10, confirmed=10) for _ in range(100)
    )
    client = _client()

    def scrape():
        started = time.perf_counter()
        response = client.get("/metrics")
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.status_code
        return elapsed, response

    def plain(parse):
        table = RpcTotals._meta.db_table
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT vhost, service, calls, timeouts, late_replies, latency "  # noqa: S608
                f"FROM {table} ORDER BY vhost, service"
            )
            rows = cursor.fetchall()
        if parse:
            for row in rows:
                json.loads(row[5]) if isinstance(row[5], str) else row[5]
        return (time.perf_counter() - started) * 1000

    changed, steady, plain_ms, parsed_ms = [], [], [], []
    for _ in range(15):
        RpcTotals.objects.update(calls=F("calls") + 1)  # every service moved since the last
        changed.append(scrape()[0])
        steady.append(scrape()[0])
        plain_ms.append(plain(False))
        parsed_ms.append(plain(True))
    with CaptureQueriesContext(connection) as queries:
        response = scrape()[1]
    samples = sum(1 for line in response.content.splitlines() if line and not line.startswith(b"#"))
    return {
        "changed_ms": statistics.median(changed),
        "steady_ms": statistics.median(steady),
        "plain_ms": statistics.median(plain_ms),
        "parsed_ms": statistics.median(parsed_ms),
        "queries": len(queries.captured_queries),
        "bytes": len(response.content),
        "samples": samples,
    }


def _scrape_every(every_s):
    """/metrics every `every_s` seconds (1,000 services' totals seeded first) until
    SIGTERM; the scrape times. As Prometheus would: from loopback, no session."""
    import signal

    from django.test import Client

    _seed_services()
    client = Client(HTTP_HOST="127.0.0.1")
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    times, size = [], 0
    next_at = time.monotonic()
    while not stopping:
        if time.monotonic() >= next_at:
            next_at += every_s
            started = time.perf_counter()
            response = client.get("/metrics")
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
            size = len(response.content)
        time.sleep(0.05)
    return {"times_ms": times, "bytes": size}


def _rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _fill(rows):
    from django.db import connection, transaction

    from tracer.models import Message

    table = Message._meta.db_table
    body = b'{"order": 12345, "items": [1, 2, 3], "note": "' + b"x" * 150 + b'"}'
    start_us = int(time.time() * 1_000_000) - rows * 1000
    columns = (
        "id, event, captured_at, vhost, node, exchange, routing_key, routing_keys, routed_queues, "
        "queue, properties, correlation_id, reply_to, reply_key, body, body_size, body_truncated, "
        "redelivered, user, connection, channel, flow_id, backlog, replay_of, fingerprint, "
        "dedupe_key, duplicates, stamp_error_us"
    )
    marks = ", ".join(["%s"] * 28)
    from tracer.store.sql import db_time

    with connection.cursor() as cursor:
        for first in range(0, rows, 20_000):
            batch = [
                (
                    n + 1,
                    "publish",
                    db_time(start_us + n * 1000),
                    "bench",
                    "rabbit@bench",
                    "orders",
                    "order.created",
                    '["order.created"]',
                    '["orders"]',
                    "",
                    '{"content_type": "application/json", "headers": {"token": "t0ps3cret"}}',
                    f"corr-{n}",
                    "",
                    "order.created",
                    body,
                    len(body),
                    False,
                    False,
                    "guest",
                    "127.0.0.1:1 -> 127.0.0.1:5672",
                    1,
                    None,
                    False,
                    None,
                    0,
                    0,
                    0,
                    0,
                )
                for n in range(first, min(first + 20_000, rows))
            ]
            with transaction.atomic():
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", batch)  # noqa: S608


def _files(rows):
    _fill(rows)
    client = _client()
    figures = {}
    for kind, query, name in (
        ("csv", {"format": "csv"}, "CSV"),
        ("jsonl", {"format": "jsonl"}, "JSON Lines with bodies"),
    ):
        start_mb = _rss_mb()
        peak = [start_mb]
        stop = threading.Event()

        def sample(peak=peak, stop=stop):
            while not stop.is_set():
                peak[0] = max(peak[0], _rss_mb())
                stop.wait(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        response = client.get("/api/messages/export", query)
        seen, size, steps, mark = 0, 0, [], 100_000
        for chunk in response.streaming_content:
            size += len(chunk)
            seen += chunk.count(b"\n")
            while seen >= mark:
                steps.append(f"{_rss_mb():.0f}")
                mark += 100_000
        stop.set()
        sampler.join(2)
        figures[kind] = {
            "name": name,
            "start_mb": start_mb,
            "peak_mb": peak[0],
            "steps": " ".join(steps) + " MB",
            "mb": size / 1024 / 1024,
            "seconds": time.monotonic() - started,
        }
    return figures
