"""The benchmark helpers that can be checked without running a benchmark."""

import time
from urllib.parse import quote

import pytest

from benchmarks import capacity, capture, common, overhead, queries, synthetic
from rabbit import amqp
from rabbit.brokers import default_broker
from tests.polling import wait_until
from tracer.models import Flow, Message


def test_it_renders_a_table_with_goals_and_verdicts():
    report = common.Report("capacity")
    report.add("events stored per second", ">= 20,000", "21,000", "plugin 7,000", ok=True)
    report.add("drain", "<= 2 s", "3.1 s", ok=False)
    report.add("calls per second", "", "1,200")
    report.note("a note")
    text = report.render()
    lines = text.splitlines()
    assert lines[0].startswith("== capacity ==  (load average ")
    assert "figure" in lines[1] and "side by side" in lines[1]
    assert "21,000" in lines[3] and "plugin 7,000" in lines[3] and lines[3].rstrip().endswith("ok")
    assert lines[4].rstrip().endswith("MISSED")
    assert not lines[5].rstrip().endswith(("ok", "MISSED"))
    assert lines[-1] == "  note: a note"


def test_it_takes_percentiles_of_samples():
    samples = list(range(1, 101))
    assert common.percentile(samples, 0.5) in (50, 51)
    assert common.percentile(samples, 0.99) == 99
    assert common.percentile([7], 0.99) == 7
    assert common.percentile([], 0.5) is None


def test_it_adds_up_what_tracing_costs_a_call_round_by_round():
    off, tap, plugin = (overhead.Condition(name) for name in ("off", "tap", "plugin"))
    # Two rounds: 1,000 calls each; the broker's and the tap's own CPU in seconds.
    off.add(1000, 1.0, 0.20)
    off.add(1000, 1.0, 0.30)
    tap.add(1000, 1.0, 0.50, own_s=0.060)
    tap.add(1000, 1.0, 0.55, own_s=0.070)
    plugin.add(1000, 1.0, 0.65)
    plugin.add(1000, 1.0, 0.60)
    # Each round against its own "off": 500 - 200 + 60, 550 - 300 + 70; the plugin's own is 0.
    assert overhead.added_cpu_us(tap, off) == pytest.approx([360.0, 320.0])
    assert overhead.added_cpu_us(plugin, off) == pytest.approx([450.0, 300.0])


@pytest.mark.django_db
def test_it_generates_query_data_through_the_storage_path():
    end_us = 1_700_000_000 * 1_000_000
    events, flows = queries.generate(40, end_us)
    assert events == 40 * queries.EVENTS_PER_UNIT
    assert flows == 40
    assert Message.objects.count() == events
    statuses = set(Flow.objects.values_list("status", flat=True))
    assert statuses == {"complete"}
    flow = Flow.objects.get(correlation_id=f"{3:032x}")
    assert flow.service == "svc-03"
    assert flow.end_to_end_ms is not None and flow.end_to_end_ms > flow.latency_ms
    assert Message.objects.filter(flow_id=flow.id).count() == 4


def test_only_the_capacity_run_binds_a_second_copy_of_the_firehose(scratch_vhost, mgmt):
    def trace_queues():
        return sorted(
            binding["destination"]
            for binding in mgmt.exchange_bindings_out(scratch_vhost, "amq.rabbitmq.trace")
        )

    config = default_broker()
    capacity.prepare(config, scratch_vhost)
    # keep-up, overhead, accuracy: the tap queue alone, or the broker routes every
    # trace event twice and keeps the unread copies.
    assert trace_queues() == ["warren.tap"]
    capacity.prepare(config, scratch_vhost, bare=True)
    assert trace_queues() == [capacity.BARE_QUEUE, "warren.tap"]


def test_capture_spools_every_event_it_acks_and_measures_both_loops():
    said = []
    report = capture.run({"capture_events": 400}, said.append)
    rows = {row.figure: row for row in report.rows}
    assert rows["events in the spool"].measured == "400"
    assert rows["events in the spool"].ok is True
    assert "read and ack only" in rows["CPU per event (this process)"].reference
    assert float(rows["CPU per event (this process)"].measured.split()[0]) > 0
    assert any("pre-filling 'spooled'" in line for line in said)


def test_it_releases_staged_events_into_the_tap_queue_of_a_traced_vhost_alone(scratch_vhost, mgmt):
    config = default_broker()
    url = config.amqp_url()
    capacity.prepare(config, scratch_vhost)
    staged = synthetic.stage(url, scratch_vhost, calls=5, flows_per_s=100.0, lead_s=0.5)
    assert staged.events == 20
    mgmt.put(f"vhosts/{quote(scratch_vhost, safe='')}", {"tracing": True})
    expected = [key for key, _, _ in synthetic.ordered_events(scratch_vhost, 5)]

    connection = amqp.blocking_connection(url, vhost=scratch_vhost, name="warren-test")
    try:
        channel = connection.channel()
        got = []

        def take():
            method, properties, _ = channel.basic_get("warren.tap", auto_ack=True)
            if method is not None:
                got.append((method.exchange, method.routing_key, properties.headers))
            return len(got) >= 20

        assert wait_until(take, 30, interval=0.01)
        time.sleep(1.0)  # anything the firehose made of the staging would be here by now
        take()
        assert synthetic.staged_left(url, scratch_vhost) == 0
    finally:
        connection.close()
    assert [key for _, key, _ in got] == expected
    assert {exchange for exchange, _, _ in got} == {"amq.rabbitmq.trace"}
    assert all(headers["vhost"] == scratch_vhost for _, _, headers in got)
    assert all(headers["x-first-death-reason"] == "expired" for _, _, headers in got)
