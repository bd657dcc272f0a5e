"""Overhead: what tracing costs the traffic it watches.

The same RPC load (several clients, as fast as they go) runs five times:
tracing off; tracing on into a queue that keeps only the newest 1,000 events,
nothing reading it (the broker's own cost, the floor under any outside
tracer); tracing by the broker's rabbitmq_tracing plugin (json, pattern `#`)
and no tap; tracing on with Warren's tap attached (as a subprocess, storing
into a scratch database, in a vhost of its own), once as it runs by default
and once under `nice 10`, as a background service. Calls per second of each,
the ratios to "off", and how far each tracer was behind when the load stopped.
"""

import contextlib

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
BACKGROUND_NICENESS = 10


def add_arguments(parser):
    parser.add_argument("--overhead-seconds", type=float, default=20.0, help="each of 3 runs")


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


def _tapped(out, options, seconds, niceness):
    """The load with Warren's tap attached: (the load, events still in the tap queue,
    the tap's CPU seconds by part during the load)."""
    out("overhead: Warren's tap" + (f", nice {niceness}" if niceness else ""))
    with TappedRun(out, options.get("database_url"), niceness=niceness) as run_:
        before = common.cpu_seconds_by_part(run_.tap.pid)
        load = _load(run_.config, run_.vhost, seconds)
        after = common.cpu_seconds_by_part(run_.tap.pid)
        used = {part: after[part] - before[part] for part in after}
        return load, queue_depth(run_.config, run_.vhost, settings.WARREN_TAP_QUEUE), used


def _load(config, vhost, seconds):
    # Not niced here: the clients, the broker and the tracer share the cores as equals.
    load = RpcLoad(config.amqp_url(), vhost, servers=2, clients=4, in_flight=10, niceness=0)
    beam = broker_pid()
    before = common.cpu_seconds(beam, children=False) if beam else 0.0
    load.run(seconds)
    load.broker_cpu_s = (common.cpu_seconds(beam, children=False) - before) if beam else None
    return load


def _per_call_us(cpu_s, load):
    return f"{cpu_s / load.calls * 1e6:,.0f} µs" if load.calls and cpu_s is not None else "-"


def run(options, out):
    seconds = options.get("overhead_seconds") or 20.0
    report = common.Report("overhead")
    with common.scratch_vhost() as (vhost, client, config):
        prepare(config, vhost)
        client.delete_queue(vhost, settings.WARREN_TAP_QUEUE)  # nothing traced piles up
        client.set_tracing(vhost, False)
        out(f"overhead: tracing off, {seconds:.0f} s")
        off = _load(config, vhost, seconds)
        # What the broker pays to trace before anybody reads a trace event: every
        # event made and routed into a queue that keeps only the newest few (a
        # queue left to grow would cost the broker more than one being read).
        # The floor under any tracer that consumes the firehose from outside.
        out("overhead: the firehose alone (into a queue that keeps the newest 1,000)")
        _declare_floor_queue(config, vhost)
        client.set_tracing(vhost, True)
        firehose = _load(config, vhost, seconds)
        client.set_tracing(vhost, False)
        client.delete_queue(vhost, FLOOR_QUEUE)
        out("overhead: rabbitmq_tracing plugin")
        client.create_trace(vhost, vhost)
        watch = PluginWatch(client, vhost)
        plugin = _load(config, vhost, seconds)
        plugin_written = watch.lines()
        plugin_behind = max(0, EVENTS_PER_CALL * plugin.calls - plugin_written)
        with contextlib.suppress(BrokerError):
            client.delete_trace(vhost, vhost)
        client.set_tracing(vhost, False)
    tapped, tap_behind, tap_cpu = _tapped(out, options, seconds, niceness=0)
    # Like the plugin (whose writer inside the broker falls behind rather than
    # take CPU from the traffic), a tap run as a background service: `nice`.
    niced, niced_behind, niced_cpu = _tapped(out, options, seconds, niceness=BACKGROUND_NICENESS)
    cpu_rows = [
        ("the broker", [(load, load.broker_cpu_s) for load in (off, firehose, plugin, tapped)]),
        *(
            (f"the tap's {part}", [(tapped, tap_cpu[part]), (niced, niced_cpu[part])])
            for part in ("capture", "feeder", "writer")
        ),
    ]
    off, tapped, plugin, firehose, niced = (
        load.calls / load.elapsed_s for load in (off, tapped, plugin, firehose, niced)
    )
    ratio_tap, ratio_plugin = tapped / off, plugin / off
    report.add("calls/s, tracing off", "", f"{off:,.0f}")
    report.add("calls/s, Warren's tap", "", f"{tapped:,.0f}", f"plugin {plugin:,.0f}")
    report.add(
        "ratio to off, Warren's tap",
        f">= {GOAL_RATIO} and >= plugin",
        f"{ratio_tap:.2f}",
        f"plugin {ratio_plugin:.2f}",
        ok=ratio_tap >= GOAL_RATIO and ratio_tap >= ratio_plugin,
    )
    report.add(
        f"ratio to off, Warren's tap at nice {BACKGROUND_NICENESS}",
        f">= {GOAL_RATIO} and >= plugin",
        f"{niced / off:.2f}",
        f"plugin {ratio_plugin:.2f}",
        ok=niced / off >= GOAL_RATIO and niced / off >= ratio_plugin,
    )
    report.add(
        "ratio to off, the firehose alone (no reader)",
        "",
        f"{firehose / off:.2f}",
        f"{firehose:,.0f} calls/s",
    )
    report.add(
        "events not yet stored / written when the load stopped",
        "",
        f"{tap_behind:,} (at nice {BACKGROUND_NICENESS}: {niced_behind:,})",
        f"plugin {plugin_behind:,}",
    )
    report.add(
        "broker CPU a call: off / firehose alone / plugin / tap",
        "",
        " / ".join(_per_call_us(cpu, load) for load, cpu in cpu_rows[0][1]),
    )
    for name, ((load, cpu), (niced_load, niced_part)) in cpu_rows[1:]:
        report.add(
            f"CPU a call, {name}",
            "",
            _per_call_us(cpu, load),
            f"at nice {BACKGROUND_NICENESS}: {_per_call_us(niced_part, niced_load)}",
        )
    report.note("the tap's run uses a vhost of its own (same load, same broker)")
    report.note(f"CPU: /proc (10 ms ticks) over each {seconds:.0f} s load, divided by its calls")
    return report
