"""Keep-up: RPC calls as fast as several clients go, the tap attached, for 60 s.

The tap runs as a subprocess on a scratch database, exactly as in production
(capture, its spool, the niced feeder and writer). While the load runs, the tap
queue's depth is sampled four times a second (passive declare: exact), with the
tap's memory. After the load stops: how long until the tap queue is empty
(capture keeping up), and until every event is stored (indexing catching up). Events emitted come
from the broker's own counters (the tap queue's publish count), dropped ones
from the tap's session (the bounded queue's dead-letter count).
"""

import threading
import time
from urllib.parse import quote

from django.conf import settings

from benchmarks import common, paced
from benchmarks.capacity import cpu_split, prepare, queue_depth
from benchmarks.load import RpcLoad

GOAL_DEPTH_P99 = 1000
AIM_DEPTH_P99 = 100
GOAL_DRAIN_S = 1.0


def add_arguments(parser):
    parser.add_argument("--seconds", type=float, default=60.0, help="load duration")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--in-flight", type=int, default=10, help="open calls per client")
    parser.add_argument(
        "--flows-per-s",
        type=float,
        default=0.0,
        help="(keep-up) synthetic trace-shaped calls released at this pace instead of RPC load",
    )
    parser.add_argument(
        "--compare",
        choices=list(paced.VARIANTS),
        help="(keep-up, with --flows-per-s) two runs side by side: span export off and on "
        "(a real OTLP/HTTP receiver), or without and with a /metrics scrape every 5 s",
    )


class TappedRun:
    """A scratch vhost and database, the tap attached, and a sampler of its queue."""

    def __init__(
        self, out, database_url=None, profile=False, niceness=0, before_tap=None, env=None
    ):
        self.out = out
        self.database_url = database_url
        self.profile = profile
        self.niceness = niceness
        self.env = env  # settings of the tap's own (environment variables)
        self.before_tap = before_tap  # called with the vhost's config before tracing is on
        self.depths = []
        self.rss = []
        self._stop = threading.Event()

    def __enter__(self):
        self._vhost_cm = common.scratch_vhost()
        self.vhost, self.client, self.config = self._vhost_cm.__enter__()
        prepare(self.config, self.vhost)
        self._db_cm = common.scratch_database(self.database_url)
        self.url = self._db_cm.__enter__()
        if self.before_tap is not None:
            self.before_tap(self)
        self.tap = common.TapProcess(
            self.vhost, self.url, profile=self.profile, niceness=self.niceness, env=self.env
        ).start()
        self.counter = common.MessageCounter(self.url)
        self._wait_consuming()
        return self

    def _wait_consuming(self):
        def consuming():
            if not self.tap.alive():
                raise common.BenchError("the tap exited:\n" + self.tap.output())
            queue = common.queue_stats(self.client, self.vhost, settings.WARREN_TAP_QUEUE)
            tracing = (self.client.vhost(self.vhost) or {}).get("tracing")
            return queue.get("consumers", 0) >= 1 and tracing

        if not common.wait_until(consuming, 60, every=0.25):
            raise common.BenchError("the tap did not start consuming within 60 s")

    def sample(self):
        """Sample tap queue depth and tap memory on a thread until stop_sampling()."""

        def loop():
            while not self._stop.is_set():
                try:
                    self.depths.append(
                        queue_depth(self.config, self.vhost, settings.WARREN_TAP_QUEUE)
                    )
                except Exception:  # noqa: BLE001, S112 - a missed sample is no result
                    continue
                self.rss.append(common.rss_mb(self.tap.pid))
                self._stop.wait(0.25)

        self._sampler = threading.Thread(target=loop, daemon=True)
        self._sampler.start()

    def stop_sampling(self):
        self._stop.set()
        self._sampler.join(5)

    def drain(self, limit_s=60.0):
        """Seconds from now until the tap queue is empty (None if not within limit_s)."""
        started = time.monotonic()
        while time.monotonic() - started < limit_s:
            if queue_depth(self.config, self.vhost, settings.WARREN_TAP_QUEUE) == 0:
                return time.monotonic() - started
            time.sleep(0.02)
        return None

    def emitted(self, settle_s=30.0):
        """Events the broker delivered to the tap (its channels' own deliver counters),
        plus any still in the tap queue, once the counters stopped moving.

        (This broker's queues report no publish counts; its channels do count
        deliveries. After the load the tap's are the vhost's only channels.)"""
        previous, steady_since = None, time.monotonic()
        deadline = time.monotonic() + settle_s
        value = 0
        while time.monotonic() < deadline:
            value = self._delivered() + queue_depth(
                self.config, self.vhost, settings.WARREN_TAP_QUEUE
            )
            if value != previous:
                previous, steady_since = value, time.monotonic()
            elif value and time.monotonic() - steady_since >= 5.5:  # beyond a stats interval
                return value
            time.sleep(0.5)
        return value

    def _delivered(self):
        channels = self.client.get(f"vhosts/{quote(self.vhost, safe='')}/channels") or []
        if isinstance(channels, dict):  # a paged answer
            channels = channels.get("items") or []
        return sum(
            (channel.get("message_stats") or {}).get("deliver_get", 0)
            for channel in channels
            if isinstance(channel, dict)
        )

    def stored_when_steady(self, expected, limit_s=30.0):
        deadline = time.monotonic() + limit_s
        stored = self.counter.count(self.vhost)
        while stored < expected and time.monotonic() < deadline:
            time.sleep(0.1)
            stored = self.counter.count(self.vhost)
        return stored

    def dropped(self):
        rows = self.counter.query("SELECT coalesce(sum(dropped), 0) FROM tracer_tapsession")
        return int(rows[0][0] or 0)

    def __exit__(self, *exc):
        self._stop.set()
        self.tap.stop()
        self.counter.close()
        self._db_cm.__exit__(*exc)
        self._vhost_cm.__exit__(*exc)


def run(options, out):
    if options.get("flows_per_s"):
        return paced.run(options, out)
    if options.get("compare"):
        raise common.BenchError("--compare needs --flows-per-s (synthetic calls at a pace)")
    seconds = options.get("seconds") or 60.0
    report = common.Report("keep-up")
    with TappedRun(out, options.get("database_url"), profile=options.get("profile")) as run_:
        out(f"keep-up: {seconds:.0f} s of RPC load in {run_.vhost}, tap attached")
        load = RpcLoad(
            run_.config.amqp_url(),
            run_.vhost,
            servers=options.get("servers") or 2,
            clients=options.get("clients") or 4,
            in_flight=options.get("in_flight") or 10,
        )
        run_.sample()
        cpu_before = common.cpu_seconds(run_.tap.pid)
        writer_before = cpu_split(run_.tap.pid)[0]
        load.run(seconds)
        stopped_at = time.monotonic()
        drain_s = run_.drain()
        cpu_after = common.cpu_seconds(run_.tap.pid)
        writer_after = cpu_split(run_.tap.pid)[0]
        run_.stop_sampling()
        emitted = run_.emitted()
        stored = run_.stored_when_steady(emitted, limit_s=120.0)
        indexed_s = time.monotonic() - stopped_at
        dropped = run_.dropped()
    if options.get("profile"):
        out(run_.tap.profile_summary())
    depths = run_.depths or [0]
    calls_s = load.calls / load.elapsed_s
    p50, p99 = common.percentile(depths, 0.5), common.percentile(depths, 0.99)
    report.add("calls per second", "", f"{calls_s:,.0f}")
    report.add(
        "events emitted per second (broker)",
        "",
        f"{emitted / load.elapsed_s:,.0f}",
        f"4 x calls: {4 * load.calls / load.elapsed_s:,.0f}",
    )
    report.add("tap queue depth p50", "", f"{p50:,}")
    report.add(
        "tap queue depth p99",
        f"< {GOAL_DEPTH_P99:,} (aim < {AIM_DEPTH_P99})",
        f"{p99:,}",
        ok=p99 < GOAL_DEPTH_P99,
    )
    report.add("tap queue depth max", "", f"{max(depths):,}")
    drained = "not within 60 s" if drain_s is None else f"{drain_s:.2f} s"
    report.add(
        "drain after the load stops",
        f"<= {GOAL_DRAIN_S:.0f} s",
        drained,
        ok=drain_s is not None and drain_s <= GOAL_DRAIN_S,
    )
    report.add(
        "every event stored (indexing caught up)",
        "",
        f"{indexed_s:.1f} s after the load",
        f"{emitted / max(indexed_s + load.elapsed_s, 1e-9):,.0f} events/s overall",
    )
    report.add("events dropped", "0", f"{dropped:,}", ok=dropped == 0)
    report.add(
        "stored == emitted",
        "yes",
        f"{stored:,} == {emitted:,}",
        ok=stored == emitted and emitted > 0,
    )
    report.add("tap peak memory (RSS, all processes)", "", f"{max(run_.rss or [0]):.0f} MB")
    total_events = max(emitted, 1)
    writer_us = (writer_after - writer_before) / total_events * 1e6
    report.add(
        "tap CPU per event",
        "",
        f"{(cpu_after - cpu_before) / total_events * 1e6:.1f} µs",
        f"writer {writer_us:.1f} µs",
    )
    report.note(f"{load.calls:,} calls by {load.clients} clients x {load.in_flight} in flight")
    return report
