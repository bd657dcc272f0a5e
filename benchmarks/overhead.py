"""Overhead: what tracing costs the traffic it watches.

The same RPC load (several clients, as fast as they go) runs under six
conditions, each in a vhost of its own set up once: tracing off; tracing on
into a queue that keeps only the newest 1,000 events, nothing reading it (the
broker's own cost, the floor under any outside tracer); tracing by the
broker's rabbitmq_tracing plugin (json, pattern `#`) and no tap; tracing on
with Warren's tap attached (a subprocess storing into a scratch database),
once as it runs by default (a background service, nice 10, its indexing
paused while the machine is busy: tracer/tap/give_way.py) and once with its
indexing never pausing (WARREN_INDEX_PAUSE_MAX=0, the previous default); and
the default tap again with its indexing held (stopped)
for the slice and let go after it: what capture alone costs the traffic, apart
from what indexing at the same time costs it.

The conditions take turns, a short slice each, round after round, the order
turned by one every round: the machine's speed drifts by tens of percent over
minutes (other guests on the host), and a ratio of two slices minutes apart
measured the drift as much as the tracer. Each ratio is taken within a round
and the median of the rounds reported. After each slice the tracer is let
finish what it deferred (the plugin's file stops growing, the tap has stored
everything), so that no condition pays for another's backlog. Calls per
second of each, the ratios to "off", CPU a call of the broker (during the
load) and of the tap's parts (during the load and until it had stored
everything), and how far each tracer was behind when its load stopped.
"""

import contextlib
import os
import signal
import statistics
import time

from django.conf import settings

from benchmarks import common
from benchmarks.capacity import PluginWatch, broker_pid, prepare, queue_depth
from benchmarks.common import EVENTS_PER_CALL
from benchmarks.keepup import TappedRun
from benchmarks.load import RpcLoad
from rabbit import amqp
from rabbit.management_http import BrokerError

GOAL_RATIO = 0.75
FLOOR_QUEUE = "warren.bench.firehose-floor"
SETTLE_LIMIT_S = 60.0
CONDITIONS = ("off", "firehose", "plugin", "tap", "unpaused", "capture")
TAPS = {"tap": {}, "unpaused": {"WARREN_INDEX_PAUSE_MAX": "0"}}  # their settings
HELD = {"capture": "tap"}  # a condition that runs a tap with its indexing held
TAP_PARTS = ("capture", "feeder", "writer")


def add_arguments(parser):
    parser.add_argument(
        "--overhead-seconds", type=float, default=6.0, help="each slice of load (overhead)"
    )
    parser.add_argument(
        "--overhead-rounds", type=int, default=4, help="rounds of the six slices (overhead)"
    )


def _declare_floor_queue(config, vhost):
    connection = amqp.blocking_connection(config.amqp_url(), vhost=vhost, name="warren-bench")
    try:
        channel = connection.channel()
        channel.queue_declare(
            FLOOR_QUEUE, arguments={"x-max-length": 1000, "x-overflow": "drop-head"}
        )
        channel.queue_bind(FLOOR_QUEUE, "amq.rabbitmq.trace", "#")
    finally:
        connection.close()


def _load(config, vhost, seconds):
    """One slice of load: (calls, seconds, broker CPU seconds)."""
    # Not niced here: the clients, the broker and the tracer share the cores as equals.
    load = RpcLoad(config.amqp_url(), vhost, servers=2, clients=4, in_flight=10, niceness=0)
    beam = broker_pid()
    before = common.cpu_seconds(beam, children=False) if beam else 0.0
    load.run(seconds)
    broker_s = (common.cpu_seconds(beam, children=False) - before) if beam else 0.0
    return load.calls, load.elapsed_s, broker_s


def _steady(read, limit_s=SETTLE_LIMIT_S, quiet_s=1.0, done=lambda value: True):
    """Wait until `read()` stops changing for `quiet_s` and is `done` (at most `limit_s`)."""
    deadline = time.monotonic() + limit_s
    previous, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        value = read()
        if value != previous:
            previous, since = value, time.monotonic()
        elif time.monotonic() - since >= quiet_s and done(value):
            return


class Condition:
    """One condition's slices, summed, and what it was behind after each."""

    def __init__(self, name):
        self.name = name
        self.rates = []  # calls/s of each slice, in round order
        self.calls = 0
        self.broker_s = 0.0
        self.tap_s = dict.fromkeys(TAP_PARTS, 0.0)
        self.behind = []  # events still in the tap queue or not yet written, by slice
        self.unindexed = []  # events captured but not yet stored, by slice (taps)
        self.settle_s = []  # seconds until everything was stored after a slice (taps)
        self.indexing_during_s = 0.0  # the feeder's and writer's CPU during the load only
        self.seconds = 0.0  # of load, in all
        self.paused_s = 0.0  # indexing paused for a busy machine, in all (taps)
        # CPU a call during each slice's load, in round order: the broker's, and
        # the tracer's own processes' (taps; the plugin runs inside the broker).
        self.broker_us = []
        self.own_us = []

    def add(self, calls, elapsed_s, broker_s, own_s=0.0):
        self.rates.append(calls / elapsed_s if elapsed_s else 0.0)
        self.calls += calls
        self.seconds += elapsed_s
        self.broker_s += broker_s
        self.broker_us.append(broker_s / calls * 1e6 if calls else 0.0)
        self.own_us.append(own_s / calls * 1e6 if calls else 0.0)

    def per_call_us(self, cpu_s):
        return f"{cpu_s / self.calls * 1e6:,.0f} µs" if self.calls else "-"


class Setups:
    """The six conditions' vhosts, set up once; `slice(name)` runs one slice of load in one."""

    def __init__(self, stack, options, out, seconds):
        self.seconds = seconds
        self.vhosts = {}
        for name in ("off", "firehose", "plugin"):
            vhost, client, config = stack.enter_context(
                common.scratch_vhost(f"warren-bench-overhead-{name}")
            )
            self.client, self.config = client, config
            prepare(config, vhost)
            client.delete_queue(vhost, settings.WARREN_TAP_QUEUE)  # nothing traced piles up
            client.set_tracing(vhost, False)
            self.vhosts[name] = vhost
        # What the broker pays to trace before anybody reads a trace event: every
        # event made and routed into a queue that keeps only the newest few (a
        # queue left to grow would cost the broker more than one being read).
        _declare_floor_queue(config, self.vhosts["firehose"])
        client.set_tracing(self.vhosts["firehose"], True)
        client.create_trace(self.vhosts["plugin"], self.vhosts["plugin"])
        stack.callback(self._delete_trace)
        self.plugin = PluginWatch(client, self.vhosts["plugin"])
        self.taps = {}
        self.emitted = {}  # events emitted into a tap's vhost, by vhost
        for name, env in TAPS.items():
            how = ", ".join(f"{k}={v}" for k, v in env.items()) or "as it runs by default"
            out(f"overhead: starting Warren's tap ({how})")
            run_ = stack.enter_context(TappedRun(out, options.get("database_url"), env=env))
            self.taps[name] = run_
            self.vhosts[name] = run_.vhost

    @contextlib.contextmanager
    def _indexing_held(self, tap):
        """The tap's indexing (its own process, which pairs and stores, and the
        feeder) stopped: capture goes on spooling and acking; the pipe to the
        tap holds its few notices a second."""
        pids = [tap.tap.pid] + [
            child
            for child in common.child_pids(tap.tap.pid)
            if b"tracer.tap.feed" in common.command_line(child)
        ]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)

    def _delete_trace(self):
        with contextlib.suppress(BrokerError):
            self.client.delete_trace(self.vhosts["plugin"], self.vhosts["plugin"])

    def slice(self, condition):
        name = condition.name
        tap = self.taps.get(HELD.get(name, name))
        before = common.cpu_seconds_by_part(tap.tap.pid) if tap else None
        paused_before = _paused_s(tap) if tap else 0.0
        with self._indexing_held(tap) if name in HELD else contextlib.nullcontext():
            calls, elapsed_s, broker_s = _load(
                self.config, tap.vhost if tap else self.vhosts[name], self.seconds
            )
        during = common.cpu_seconds_by_part(tap.tap.pid) if tap else None
        own_s = sum(during[part] - before[part] for part in TAP_PARTS) if tap else 0.0
        condition.add(calls, elapsed_s, broker_s, own_s)
        if tap is not None:
            condition.indexing_during_s += sum(
                during[part] - before[part] for part in ("feeder", "writer")
            )
            depth = queue_depth(tap.config, tap.vhost, settings.WARREN_TAP_QUEUE)
            condition.behind.append(depth)
            # Emitted into this tap's vhost so far, by whichever condition ran there.
            self.emitted[tap.vhost] = self.emitted.get(tap.vhost, 0) + EVENTS_PER_CALL * calls
            stored = tap.counter.count(tap.vhost)
            condition.unindexed.append(max(0, self.emitted[tap.vhost] - depth - stored))
            started = time.monotonic()
            # Steady, and the spool empty: a paused indexing stores nothing for a
            # second or more after the load, which "no change" alone took for done.
            _steady(lambda: (tap.counter.count(tap.vhost), queue_depth(
                tap.config, tap.vhost, settings.WARREN_TAP_QUEUE), _spool_held(tap)),
                done=lambda value: value[2] == 0)  # fmt: skip
            condition.settle_s.append(time.monotonic() - started)
            condition.paused_s += _paused_s(tap) - paused_before
            # Through the settling too: what indexing put off is paid for then.
            after = common.cpu_seconds_by_part(tap.tap.pid)
            for part in TAP_PARTS:
                condition.tap_s[part] += after[part] - before[part]
        elif name == "plugin":
            written = self.plugin.lines()
            condition.behind.append(max(0, EVENTS_PER_CALL * condition.calls - written))
            _steady(self.plugin.size)


def _spool_held(tap):
    """Frames the tap's spool holds, as its session said last (once a second)."""
    rows = tap.counter.query("SELECT spool_frames FROM tracer_tapsession ORDER BY id DESC LIMIT 1")
    return int(rows[0][0]) if rows else 0


def _paused_s(tap):
    """Seconds the tap's indexing paused for a busy machine so far (its session's figure)."""
    rows = tap.counter.query("SELECT max(index_paused_s) FROM tracer_tapsession")
    return float(rows[0][0] or 0.0) if rows else 0.0


def added_cpu_us(condition, off):
    """By round: the CPU a call `condition`'s tracing added during the load.

    The broker's CPU a call above tracing off's in the same round, plus the
    tracer's own processes' during the load (none for the plugin: it runs in
    the broker). What the machine spent on tracing for each call it served:
    beside calls a second, a second view of the same slices (two identical
    conditions, the default tap whose indexing paused through every 6 s slice
    and capture alone, differed by up to 0.09 in the median ratio of one run).
    Both tracers defer work past the load (the plugin's unwritten lines, the
    tap's indexing): neither's is counted here.
    """
    return [
        broker - base + own
        for broker, own, base in zip(
            condition.broker_us, condition.own_us, off.broker_us, strict=True
        )
    ]


def _median_us(values):
    return f"{statistics.median(values):,.0f} µs" if values else "-"


def run(options, out):
    seconds = options.get("overhead_seconds") or 6.0
    rounds = max(1, options.get("overhead_rounds") or 4)
    report = common.Report("overhead")
    conditions = {name: Condition(name) for name in CONDITIONS}
    with contextlib.ExitStack() as stack:
        setups = Setups(stack, options, out, seconds)
        for round_ in range(rounds):
            order = CONDITIONS[round_ % len(CONDITIONS) :] + CONDITIONS[: round_ % len(CONDITIONS)]
            out(f"overhead: round {round_ + 1} of {rounds}: {', '.join(order)}")
            for name in order:
                setups.slice(conditions[name])
    off = conditions["off"]

    def ratios(name):
        pairs = zip(conditions[name].rates, off.rates, strict=True)
        return [rate / base for rate, base in pairs if base]

    def median_ratio(name):
        values = ratios(name)
        return statistics.median(values) if values else 0.0

    def spread(name):
        values = ratios(name)
        return f"rounds {min(values):.2f}–{max(values):.2f}" if values else ""

    tap, unpaused, plugin = (median_ratio(name) for name in ("tap", "unpaused", "plugin"))
    off_rate = statistics.median(off.rates)
    report.add("calls/s, tracing off (median of rounds)", "", f"{off_rate:,.0f}")
    report.add(
        "calls/s, Warren's tap (median of rounds)",
        "",
        f"{statistics.median(conditions['tap'].rates):,.0f}",
        f"plugin {statistics.median(conditions['plugin'].rates):,.0f}",
    )
    report.add(
        "ratio to off, Warren's tap",
        f">= {GOAL_RATIO} and >= plugin",
        f"{tap:.2f} ({spread('tap')})",
        f"plugin {plugin:.2f} ({spread('plugin')})",
        ok=tap >= GOAL_RATIO and tap >= plugin,
    )
    report.add(
        "ratio to off, Warren's tap never pausing its indexing (WARREN_INDEX_PAUSE_MAX=0)",
        "",
        f"{unpaused:.2f} ({spread('unpaused')})",
        f"plugin {plugin:.2f}",
    )
    report.add(
        "seconds the tap's indexing paused for the busy machine (to its first look after "
        "each slice), beside the seconds of load",
        "",
        f"{conditions['tap'].paused_s:.0f} of {conditions['tap'].seconds:.0f}",
        f"never pausing: {conditions['unpaused'].paused_s:.0f}",
    )
    report.add(
        "ratio to off, Warren's capture alone (the tap's indexing held during the load)",
        "",
        f"{median_ratio('capture'):.2f} ({spread('capture')})",
        f"firehose alone {median_ratio('firehose'):.2f}",
    )
    report.add(
        "ratio to off, the firehose alone (no reader)",
        "",
        f"{median_ratio('firehose'):.2f} ({spread('firehose')})",
    )
    report.add(
        "rounds where the tap's ratio >= the plugin's",
        "",
        f"{sum(t >= p for t, p in zip(ratios('tap'), ratios('plugin'), strict=True))} of {rounds}",
        "never pausing: "
        f"{sum(t >= p for t, p in zip(ratios('unpaused'), ratios('plugin'), strict=True))}",
    )
    added = {name: added_cpu_us(conditions[name], off) for name in CONDITIONS}
    report.add(
        "CPU a call the tracing adds during the load (the broker's above tracing off's in "
        "the same round, plus the tracer's own processes'), median of rounds",
        "",
        f"tap {_median_us(added['tap'])} (capture alone {_median_us(added['capture'])}, "
        f"never pausing {_median_us(added['unpaused'])})",
        f"plugin {_median_us(added['plugin'])}; firehose alone {_median_us(added['firehose'])}",
    )
    report.add(
        "rounds where the tap adds no more CPU a call than the plugin",
        "",
        f"{sum(t <= p for t, p in zip(added['tap'], added['plugin'], strict=True))} of {rounds}",
        "capture alone: "
        f"{sum(t <= p for t, p in zip(added['capture'], added['plugin'], strict=True))}",
    )
    report.add(
        "events not yet read (tap queue) / written (plugin) when a slice stopped, most",
        "",
        f"{max(conditions['tap'].behind):,} "
        f"(never pausing: {max(conditions['unpaused'].behind):,})",
        f"plugin {max(conditions['plugin'].behind):,}",
    )
    report.add(
        "events read but not yet stored when a slice stopped, most; then stored within",
        "",
        f"{max(conditions['tap'].unindexed):,}; {max(conditions['tap'].settle_s):.1f} s",
        f"never pausing: {max(conditions['unpaused'].unindexed):,}; "
        f"{max(conditions['unpaused'].settle_s):.1f} s",
    )
    report.add(
        "broker CPU a call: off / firehose alone / plugin / tap / capture alone",
        "",
        " / ".join(
            conditions[name].per_call_us(conditions[name].broker_s)
            for name in ("off", "firehose", "plugin", "tap", "capture")
        ),
    )
    report.add(
        "CPU a call of the tap's indexing during the load (the rest after it)",
        "",
        conditions["tap"].per_call_us(conditions["tap"].indexing_during_s),
        "never pausing: "
        f"{conditions['unpaused'].per_call_us(conditions['unpaused'].indexing_during_s)}",
    )
    report.add(
        "CPU a call, capture alone (indexing held)",
        "",
        conditions["capture"].per_call_us(conditions["capture"].tap_s["capture"]),
        f"with indexing: {conditions['tap'].per_call_us(conditions['tap'].tap_s['capture'])}",
    )
    for part in TAP_PARTS:
        report.add(
            f"CPU a call, the tap's {part}",
            "",
            conditions["tap"].per_call_us(conditions["tap"].tap_s[part]),
            "never pausing: "
            f"{conditions['unpaused'].per_call_us(conditions['unpaused'].tap_s[part])}",
        )
    report.note(
        f"{rounds} round(s) of {seconds:.0f} s slices, each condition in a vhost of its own "
        "(same load, same broker); ratios within a round, medians of rounds"
    )
    report.note(
        "CPU: /proc (10 ms ticks), the broker's over the slices, the tap's over the slices and "
        "until it had stored everything (settling: its spool empty and no change for 1 s, which "
        "the figure 'stored within' includes), divided by their calls"
    )
    return report
