"""Overhead: what tracing costs the traffic it watches.

The same RPC load (several clients, as fast as they go) runs three times in one
scratch vhost: tracing off; tracing on with Warren's tap attached (as a
subprocess, storing into a scratch database); tracing by the broker's
rabbitmq_tracing plugin (json, pattern `#`) and no tap. Calls per second of
each, and the two ratios to "off".
"""

from django.conf import settings

from tracer.bench import common
from tracer.bench.capacity import prepare
from tracer.bench.keepup import TappedRun
from tracer.bench.load import RpcLoad

GOAL_RATIO = 0.75


def add_arguments(parser):
    parser.add_argument("--overhead-seconds", type=float, default=20.0, help="each of 3 runs")


def _calls_per_s(config, vhost, seconds):
    load = RpcLoad(config.amqp_url(), vhost, servers=2, clients=4, in_flight=10)
    load.run(seconds)
    return load.calls / load.elapsed_s


def run(options, out):
    seconds = options.get("overhead_seconds") or 20.0
    report = common.Report("overhead")
    with common.scratch_vhost() as (vhost, client, config):
        prepare(config, vhost)
        client.delete_queue(vhost, settings.WARREN_TAP_QUEUE)  # nothing traced piles up
        client.set_tracing(vhost, False)
        out(f"overhead: tracing off, {seconds:.0f} s")
        off = _calls_per_s(config, vhost, seconds)
        out("overhead: rabbitmq_tracing plugin")
        client.create_trace(vhost, vhost)
        plugin = _calls_per_s(config, vhost, seconds)
        client.delete_trace(vhost, vhost)
        client.set_tracing(vhost, False)
    out("overhead: Warren's tap")
    with TappedRun(out, options.get("database_url")) as run_:
        tapped = _calls_per_s(run_.config, run_.vhost, seconds)
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
    report.note("the tap's run uses a vhost of its own (same load, same broker, same database)")
    return report
