"""Queries: the pages and API calls an operator uses, on a big history, both databases.

5 million events / 1 million flows by default (`--scale 0.1` for a quick run):
each unit is one RPC call (request, its delivery, reply, reply delivery) plus
one plain publish, spread over the 48 hours before now across 20 services and
2 vhosts. They are stored through the real storage code path
(tracer.store.storage.store_batch) in batches of 10,000 events, on a scratch SQLite
file and on a scratch PostgreSQL database. Then, through Django's test client
(URL routing, middleware, access checks, templates), logged in as a user made
for the run: correlation-id lookup (/api/flows?correlation_id=), the Messages
page, the Flows page and one service's statistics over 24 h — medians of
repeated runs.

Each database is filled and measured by a worker (`bench queries
--queries-worker`, DATABASE_URL set) so that Django talks to that database.
"""

import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from urllib.parse import quote, urlsplit

from benchmarks import common

GOALS_MS = {
    "correlation-id lookup": 10,
    "Messages page": None,
    "Flows page": 100,
    "service stats, 24 h": 300,
}
EVENTS = 5_000_000
EVENTS_PER_UNIT = 5
SERVICES = 20
SPAN_S = 48 * 3600
BATCH_EVENTS = 10_000
REPEATS = 15
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"


def add_arguments(parser):
    parser.add_argument("--scale", type=float, default=1.0, help="of 5M events / 1M flows")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES,
        help="a PostgreSQL server to make a scratch database on ('' to skip)",
    )
    parser.add_argument(
        "--databases", choices=["both", "sqlite", "postgres"], default="both", help="(queries)"
    )
    parser.add_argument("--queries-worker", action="store_true", help="(internal)")


def run(options, out):
    if options.get("queries_worker"):
        return _worker(options, out)
    scale = options.get("scale") or 1.0
    report = common.Report("queries")
    results = {}
    databases = options.get("databases") or "both"
    if databases in ("both", "sqlite"):
        with common.scratch_database() as url:
            out(f"queries: SQLite, {int(EVENTS * scale):,} events")
            results["SQLite"] = _run_worker(url, scale, out)
    pg = options.get("postgres_url") if databases in ("both", "postgres") else None
    if pg:
        import psycopg

        try:
            with _postgres_database(pg) as url:
                out(f"queries: PostgreSQL, {int(EVENTS * scale):,} events")
                results["PostgreSQL"] = _run_worker(url, scale, out)
        except psycopg.OperationalError as error:
            report.note(f"PostgreSQL left out: {str(error).strip()[:200]}")
    for name, goal in GOALS_MS.items():
        for database, figures in results.items():
            value = figures["medians"].get(name)
            if value is None:
                continue
            report.add(
                f"{name} ({database}), median",
                f"< {goal} ms" if goal else "",
                f"{value:.1f} ms",
                ok=None if goal is None else value < goal,
            )
    for database, figures in results.items():
        report.add(
            f"generated ({database})",
            "",
            f"{figures['events']:,} events / "
            f"{figures['flows']:,} flows in {figures['generate_s']:.0f} s "
            f"({figures['events'] / figures['generate_s']:,.0f} events/s)",
        )
    return report


def _run_worker(url, scale, out):
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "bench",
            "queries",
            "--queries-worker",
            "--scale",
            str(scale),
        ],
        cwd=common.ROOT,
        env=dict(os.environ, DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise common.BenchError(
        f"the queries worker failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
    )


class _postgres_database:
    """A scratch database on a loopback PostgreSQL server, migrated, dropped afterwards."""

    def __init__(self, server_url):
        host = urlsplit(server_url).hostname or ""
        if host not in common.LOOPBACK:
            raise common.BenchError(f"benchmarks use a loopback PostgreSQL only, not {host!r}")
        self.server_url = server_url.replace("postgres://", "postgresql://", 1)
        self.name = f"warren_bench_{secrets.token_hex(4)}"

    def _admin(self, sql):
        import psycopg

        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql)

    def __enter__(self):
        self._admin(f'CREATE DATABASE "{self.name}"')
        parts = urlsplit(self.server_url)
        url = parts._replace(scheme="postgres", path="/" + quote(self.name)).geturl()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=common.ROOT,
            env=dict(os.environ, DATABASE_URL=url),
            check=True,
        )
        return url

    def __exit__(self, *exc):
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# --- the worker (runs with DATABASE_URL = the scratch database) -----------------------


def _worker(options, out):
    scale = options.get("scale") or 1.0
    units = max(1, int(EVENTS * scale) // EVENTS_PER_UNIT)
    started = time.monotonic()
    end_us = time.time_ns() // 1000
    events, flows = generate(units, end_us)
    generate_s = time.monotonic() - started
    medians = measure(end_us, units)
    result = {"events": events, "flows": flows, "generate_s": generate_s, "medians": medians}
    out("RESULT " + json.dumps(result))
    return common.Report("queries worker")


def generate(units, end_us):
    """Store `units` calls (+ one plain publish each) through store_batch; (events, flows)."""
    from django.db import connection

    from tracer.store import storage
    from tracer.tap.decoding import captured_from_values

    step_us = SPAN_S * 1_000_000 // units
    start_us = end_us - SPAN_S * 1_000_000
    batch = []
    stored = 0
    analyzed = 0
    on_postgres = connection.vendor == "postgresql"
    per_batch = BATCH_EVENTS // EVENTS_PER_UNIT
    for first in range(0, units, per_batch):
        for unit in range(first, min(units, first + per_batch)):
            batch.extend(_unit_events(unit, start_us + unit * step_us, captured_from_values))
        storage.store_batch(batch, now=end_us)
        stored += len(batch)
        batch = []
        if on_postgres and stored > analyzed * 1.1 + 50:
            _analyze_like_autovacuum()
            analyzed = stored
    if on_postgres:
        _analyze_like_autovacuum()
    from tracer.models import Flow

    return stored, Flow.objects.count()


def _analyze_like_autovacuum():
    """PostgreSQL: refresh the planner's statistics as autovacuum does by default
    (after a tenth of a table changed). A server with autovacuum off would plan
    every query of the run blind, which no production database does."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE tracer_message, tracer_flow, tracer_serviceminute, tracer_latencybucket"
        )


def _unit_events(unit, at, make):
    vhost = "orders" if unit % 2 else "billing"
    service = f"svc-{unit % SERVICES:02d}"
    reply_to = f"amq.gen-client-{unit % 64:02d}"
    correlation_id = f"{unit:032x}"
    request_props = f'{{"reply_to": "{reply_to}", "correlation_id": "{correlation_id}"}}'
    reply_props = f'{{"correlation_id": "{correlation_id}"}}'
    wait = 1000 + unit % 3000
    work = 2000 + (unit * 7919) % 40_000
    back = 800 + unit % 1500
    conn = f"127.0.0.1:{40000 + unit % 64} -> 127.0.0.1:5672"
    server = "127.0.0.1:39999 -> 127.0.0.1:5672"
    body = b'{"n": 20}'
    answer = b'{"n": 20, "fibonacci": 6765}'
    plain = b'{"order": %d, "state": "created"}' % unit
    key = unit * 8

    def event(kind, us, routing_key, queue, props, corr, rto, data, connection, fp, routed):
        # Slot order of tracer.tap.decoding.Captured.
        return make(
            (
                None,
                kind,
                us,
                vhost,
                "rabbit@localhost",
                "",
                routing_key,
                f'["{routing_key}"]',
                routed,
                queue,
                props,
                corr,
                rto,
                data,
                len(data),
                False,
                False,
                "guest",
                connection,
                1,
                False,
                None,
                fp,
                key + len(queue) + us % 7,
                False,
                None,
                0,  # stamp_error_us
            )
        )

    request_fp, reply_fp = key + 1, key + 2
    return [
        event(
            "publish",
            at,
            service,
            "",
            request_props,
            correlation_id,
            reply_to,
            body,
            conn,
            request_fp,
            f'["{service}"]',
        ),
        event(
            "deliver",
            at + wait,
            service,
            service,
            request_props,
            correlation_id,
            reply_to,
            body,
            server,
            request_fp,
            None,
        ),
        event(
            "publish",
            at + wait + work,
            reply_to,
            "",
            reply_props,
            correlation_id,
            "",
            answer,
            server,
            reply_fp,
            f'["{reply_to}"]',
        ),
        event(
            "deliver",
            at + wait + work + back,
            reply_to,
            reply_to,
            reply_props,
            correlation_id,
            "",
            answer,
            conn,
            reply_fp,
            None,
        ),
        event(
            "publish",
            at + 500,
            "order.created",
            "",
            "{}",
            "",
            "",
            plain,
            conn,
            key + 3,
            '["orders.audit"]',
        ),
    ]


def measure(end_us, units):
    """Medians (ms) of the four operator queries, through Django's test client."""
    import random

    from django.contrib.auth import get_user_model
    from django.test import Client

    from tracer.times import from_us

    user = get_user_model().objects.create_superuser("warren-bench", "", secrets.token_hex(12))
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    rng = random.Random(7)
    since = from_us(end_us - 24 * 3600 * 1_000_000).isoformat()

    def timed(path, check):
        began = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - began) * 1000.0
        if response.status_code != 200 or not check(response):
            raise common.BenchError(f"{path} answered {response.status_code}")
        return elapsed

    def has_results(response):
        return bool(response.json()["results"])

    cases = {
        "correlation-id lookup": lambda: timed(
            f"/api/flows?correlation_id={rng.randrange(units):032x}", has_results
        ),
        "Messages page": lambda: timed("/messages/", lambda r: b"<table" in r.content),
        "Flows page": lambda: timed("/flows/", lambda r: b"<table" in r.content),
        "service stats, 24 h": lambda: timed(
            f"/api/flows/stats?service=svc-03&since={quote(since)}",
            lambda r: bool(r.json()["services"]),
        ),
    }
    medians = {}
    for name, case in cases.items():
        case()  # the first run warms caches and the connection
        medians[name] = statistics.median(case() for _ in range(REPEATS))
    return medians
