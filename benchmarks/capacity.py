"""Capacity: how fast the tap drains a pre-filled tap queue into the database.

Real RPC traffic (Fibonacci-shaped calls, four trace events each) runs in a
scratch vhost with tracing on while no tap reads: its events pile up in the
tap queue. The broker's own rabbitmq_tracing plugin traces the same vhost at
the same time (json format, pattern `#`), so it is fed exactly the same events;
its rate is the lines it writes per second while it still has a backlog.
Then the tap starts on a fresh database and drains the queue: events stored
per second, from its first stored event to the last, and the CPU it used.

A third queue on the trace exchange gets the same events; at the end a bare
pika consumer that only reads each trace message's headers drains it: the
machine's own yardstick for what one Python core can take off the broker.
"""

import contextlib
import os
import threading
import time

from django.conf import settings

from benchmarks import common
from benchmarks.load import SERVICE_QUEUE, RpcLoad
from rabbit import amqp
from rabbit.management_http import BrokerError
from tracer.tap.queue import declare_tap_queue

GOAL_PER_S = 20_000
PLUGIN_WAIT_S = 60.0
DRAIN_LIMIT_S = 120.0
BARE_QUEUE = "warren.bench.bare-pika"
BARE_PREFETCH = 2000
BARE_ACK_EVERY = 500
TRACE_DIRECTORY = "/var/tmp/rabbitmq-tracing"  # noqa: S108 - the plugin's default (loopback: same machine)


def add_arguments(parser):
    parser.add_argument("--events", type=int, default=200_000, help="events to pre-fill")
    parser.add_argument("--database-url", help="tap database (default: a scratch SQLite file)")
    parser.add_argument(
        "--profile", action="store_true", help="run the tap under py-spy; print where time goes"
    )
    parser.add_argument(
        "--taps", type=int, default=1, help="tap processes sharing the tap queue (capacity)"
    )


def prepare(config, vhost, bare=False):
    """The tap queue and the service queue; with `bare`, also the queue that collects
    a second copy of every trace event for the bare pika consumer (capacity only:
    elsewhere it would double the broker's tracing work and never be read)."""
    connection = amqp.blocking_connection(config.amqp_url(), vhost=vhost, name="warren-bench")
    try:
        channel = connection.channel()
        declare_tap_queue(
            channel,
            settings.WARREN_TAP_QUEUE,
            settings.WARREN_TAP_QUEUE_MAX_LENGTH,
            settings.WARREN_TAP_QUEUE_MAX_BYTES,
        )
        if bare:
            channel.queue_declare(BARE_QUEUE)
            channel.queue_bind(BARE_QUEUE, "amq.rabbitmq.trace", "#")
        channel.queue_declare(SERVICE_QUEUE)
    finally:
        connection.close()


def queue_depth(config, vhost, name):
    """Messages in a queue now (a passive declare: exact, unlike the API's samples)."""
    connection = amqp.blocking_connection(config.amqp_url(), vhost=vhost, name="warren-bench")
    try:
        return connection.channel().queue_declare(name, passive=True).method.message_count
    finally:
        connection.close()


def steady_depth(config, vhost, name, steady_s=2.0, limit_s=60.0):
    """The queue's depth once it stopped growing (trace events still in the broker's
    mailboxes are not counted yet)."""
    depth, since = queue_depth(config, vhost, name), time.monotonic()
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and time.monotonic() - since < steady_s:
        time.sleep(0.25)
        now = queue_depth(config, vhost, name)
        if now != depth:
            depth, since = now, time.monotonic()
    return depth


class PluginWatch:
    """The rabbitmq_tracing log file of one trace: its size over time, in lines."""

    def __init__(self, client, name):
        self.client = client
        self.file = f"{name}.log"
        self.samples = []  # (monotonic s, bytes)

    def size(self):
        for item in self.client.get("trace-files") or ():
            if item["name"] == self.file:
                return int(item.get("size") or 0)
        return 0

    def sample(self):
        self.samples.append((time.monotonic(), self.size()))
        return self.samples[-1][1]

    def start(self):
        """Sample twice a second on a thread; returns it (call .stop())."""
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                with contextlib.suppress(Exception):
                    self.sample()
                stop.wait(0.5)

        thread = threading.Thread(target=loop, daemon=True)
        thread.stop = lambda: (stop.set(), thread.join(5))
        thread.start()
        return thread

    def lines(self):
        """Lines in the file now, counted on disk (same machine), else estimated."""
        try:
            with open(f"{TRACE_DIRECTORY}/{self.file}", "rb") as handle:
                return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        except OSError:
            per_line = self.bytes_per_line()
            return int(self.size() / per_line) if per_line else 0

    def bytes_per_line(self):
        """From the file on disk when readable (same machine), else its first lines."""
        try:
            with open(f"{TRACE_DIRECTORY}/{self.file}", "rb") as handle:
                head = handle.read(4 << 20)
        except OSError:
            head = b""
        lines = head.count(b"\n")
        if lines:
            return len(head[: head.rfind(b"\n") + 1]) / lines
        return None


def run(options, out):
    events = options.get("events") or 200_000
    calls = max(1, events // common.EVENTS_PER_CALL)
    taps = max(1, options.get("taps") or 1)
    report = common.Report("capacity")
    with common.scratch_vhost() as (vhost, client, config):
        prepare(config, vhost, bare=True)
        trace = vhost  # its file is <vhost>.log, removed with the vhost
        client.create_trace(vhost, trace)
        client.set_tracing(vhost, True)
        watch = PluginWatch(client, trace)
        out(f"capacity: generating {calls} RPC calls ({calls * 4} events) in {vhost}")
        load = RpcLoad(
            config.amqp_url(), vhost, servers=2, clients=4, in_flight=250, limit=calls, prefetch=500
        )
        sampler = watch.start()
        started = time.monotonic()
        load.run(seconds=240)
        generated_s = time.monotonic() - started
        client.set_tracing(vhost, False)
        emitted = steady_depth(config, vhost, settings.WARREN_TAP_QUEUE)
        out(f"capacity: {load.calls} calls in {generated_s:.1f} s; tap queue holds {emitted}")
        # The plugin: until its file holds every event (bounded).
        deadline = time.monotonic() + PLUGIN_WAIT_S
        while time.monotonic() < deadline:
            per_line = watch.bytes_per_line()
            if per_line and watch.samples and watch.samples[-1][1] / per_line >= emitted * 0.999:
                break
            time.sleep(0.5)
        sampler.stop()
        per_line = watch.bytes_per_line()
        plugin_rate, plugin_lines = _plugin_rate(watch, per_line)
        lag_at_end = _lines_at(watch, started + generated_s, per_line)
        with contextlib.suppress(BrokerError):  # a broker restart ends traces anyway
            client.delete_trace(vhost, trace)

        # Warren's tap on a fresh database.
        with common.scratch_database(options.get("database_url")) as url:
            rate, stored, cpu_us, elapsed = _drain(
                vhost, url, emitted, out, profile=options.get("profile"), taps=taps
            )
        bare_rate, bare_cpu_us, bare_count = bare_pika_drain(config, vhost, emitted)
        out(f"capacity: bare pika consumer: {bare_count:,} events, {bare_cpu_us:.1f} µs CPU each")
    report.add(
        "events stored per second",
        f">= {GOAL_PER_S:,} and > plugin",
        f"{rate:,.0f}",
        f"plugin {plugin_rate:,.0f} lines/s" if plugin_rate else "plugin: no lines",
        ok=rate >= GOAL_PER_S and rate > (plugin_rate or 0),
    )
    report.add(
        "events pre-filled (tap queue)", "", f"{emitted:,}", f"plugin wrote {plugin_lines:,}"
    )
    report.add("events stored", "= pre-filled", f"{stored:,}", ok=stored == emitted)
    report.add(
        "bare pika consumer, headers only (one core)",
        "",
        f"{bare_rate:,.0f} events/s",
        f"tap stores {rate / bare_rate:.2f}x of it" if bare_rate else "",
    )
    report.add("tap CPU per event (all its processes)", "", f"{cpu_us:.1f} µs")
    report.add("drain time", "", f"{elapsed:.1f} s")
    report.note(
        f"generation: {load.calls:,} calls ({emitted / generated_s:,.0f} events/s) in "
        f"{generated_s:.1f} s; the plugin had written {lag_at_end:,} lines when it ended"
        + (
            " (it kept up: its rate is bounded by the load's)"
            if lag_at_end >= emitted * 0.95
            else ""
        )
    )
    report.note(
        "tap database: "
        + ("scratch SQLite" if not options.get("database_url") else "given")
        + (f"; {taps} tap processes sharing the tap queue" if taps > 1 else "")
    )
    return report


def _lines_at(watch, moment, per_line):
    """Lines the plugin had written by `moment` (the last sample before it)."""
    if not per_line:
        return 0
    before = [size for at, size in watch.samples if at <= moment]
    return int(before[-1] / per_line) if before else 0


def _plugin_rate(watch, per_line):
    """Lines/s from its first written line to its last."""
    samples = watch.samples
    if not per_line or len(samples) < 2:
        return 0.0, 0
    total_lines = int(samples[-1][1] / per_line)
    growing = [
        (earlier, later)
        for earlier, later in zip(samples, samples[1:], strict=False)
        if later[1] > earlier[1]
    ]
    if not growing:
        return 0.0, total_lines
    first, last = growing[0][0], growing[-1][1]
    seconds = last[0] - first[0]
    lines = (last[1] - first[1]) / per_line
    return (lines / seconds if seconds > 0 else 0.0), total_lines


def _drain(vhost, url, expected, out, profile=False, taps=1):
    counter = common.MessageCounter(url)
    beam = broker_pid()
    on_postgres = url.startswith(("postgres://", "postgresql://"))

    def database_cpu():
        return postgres_cpu() if on_postgres else 0.0

    processes = [
        common.TapProcess(vhost, url, profile=profile and index == 0).start()
        for index in range(taps)
    ]
    try:
        first = None
        stored = 0
        deadline = time.monotonic() + DRAIN_LIMIT_S
        peak = [0.0, 0.0]
        while time.monotonic() < deadline and all(tap.alive() for tap in processes):
            stored = counter.count(vhost)
            peak = [
                max(peak[0], sum(common.rss_mb(tap.pid) for tap in processes)),
                max(peak[1], sum(common.rss_mb(tap.pid, False) for tap in processes)),
            ]
            now = time.monotonic()
            if stored and first is None:
                first = (now, stored, _cpu(processes), _writer_cpu(processes),
                         common.cpu_seconds(beam, children=False) if beam else 0.0,
                         database_cpu())  # fmt: skip
            if stored >= expected:
                break
            time.sleep(0.05)
        finished = time.monotonic()
        cpu = _cpu(processes)
        writer_cpu = _writer_cpu(processes)
        beam_cpu = common.cpu_seconds(beam, children=False) if beam else 0.0
        db_cpu = database_cpu()
        for tap in processes:
            if not tap.alive():
                out("capacity: a tap exited:\n" + tap.output())
    finally:
        for tap in processes:
            tap.stop()
        counter.close()
    if profile:
        out(processes[0].profile_summary())
    if first is None:
        return 0.0, stored, 0.0, 0.0
    elapsed = finished - first[0]
    rate = (stored - first[1]) / elapsed if elapsed > 0 else 0.0
    count = max(stored - first[1], 1)
    cpu_us = (cpu - first[2]) / count * 1e6
    writer_us = (writer_cpu - first[3]) / count * 1e6
    broker_us = (beam_cpu - first[4]) / count * 1e6
    db_us = (db_cpu - first[5]) / count * 1e6
    out(
        f"capacity: CPU per event: {writer_us:.1f} µs tap writer process, "
        f"{cpu_us - writer_us:.1f} µs feeder, {broker_us:.1f} µs broker"
        + (f", {db_us:.1f} µs PostgreSQL; " if db_us else "; ")
        + f"elapsed {elapsed:.1f} s; peak RSS {peak[0]:.0f} MB ({peak[1]:.0f} MB writer)"
    )
    return rate, stored, cpu_us, elapsed


def _cpu(processes):
    return sum(common.cpu_seconds(tap.pid) for tap in processes)


def _writer_cpu(processes):
    return sum(cpu_split(tap.pid)[0] for tap in processes)


def bare_pika_drain(config, vhost, expected, limit_s=DRAIN_LIMIT_S):
    """Drain BARE_QUEUE with pika, reading each trace message's headers and nothing
    more: (events/s from the first delivery to the last, CPU µs per event, count)."""
    connection = amqp.blocking_connection(config.amqp_url(), vhost=vhost, name="warren-bench")
    state = {"count": 0, "first": None, "last": None}
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=BARE_PREFETCH)

        def on_message(channel, method, properties, body):
            headers = properties.headers or {}
            headers.get("routing_keys"), headers.get("properties"), method.routing_key
            state["count"] += 1
            state["last"] = time.monotonic()
            if state["first"] is None:
                state["first"] = (state["last"], time.process_time())
            if state["count"] % BARE_ACK_EVERY == 0 or state["count"] >= expected:
                channel.basic_ack(method.delivery_tag, multiple=True)
            if state["count"] >= expected:
                channel.stop_consuming()

        channel.basic_consume(BARE_QUEUE, on_message)
        deadline = time.monotonic() + limit_s
        while state["count"] < expected and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.5)
        cpu = time.process_time()
    finally:
        connection.close()
    if state["first"] is None or state["count"] < 2:
        return 0.0, 0.0, state["count"]
    (first_at, first_cpu), count = state["first"], state["count"] - 1
    elapsed = state["last"] - first_at
    return (count / elapsed if elapsed > 0 else 0.0), (cpu - first_cpu) / count * 1e6, count + 1


def postgres_cpu():
    """CPU so far of the local PostgreSQL server's processes."""
    return sum(common.cpu_seconds(pid, children=False) for pid in _pids_named("postgres"))


def _pids_named(name):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if open(f"/proc/{entry}/comm").read().strip() == name:  # noqa: SIM115
                    found.append(int(entry))
    return found


def broker_pid():
    """The local broker's Erlang VM, for its CPU figures (None if not found)."""
    found = _pids_named("beam.smp")
    return found[0] if found else None


def cpu_split(pid):
    """(CPU of the tap's own process, CPU of its children)."""
    own = common.cpu_seconds(pid, children=False)
    return own, common.cpu_seconds(pid) - own
