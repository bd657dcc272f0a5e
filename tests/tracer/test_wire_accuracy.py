"""The tap's stamps against the wire: lo:5672 captured (AF_PACKET) while RPC calls run.

Each traced publish's error splits in two: the broker's (the client's publish on
the wire → its trace message on the wire, which no tap can correct) and the
tap's own (that trace message on the wire → Warren's stamp). Capture reads each
message with its own system call, ending where the message ends, so its stamp
is the kernel's stamp of the very packet that brought its last byte.
"""

import os
import statistics

import pytest

from benchmarks import wire, wire_rpc
from rabbit.brokers import default_broker
from tests.polling import wait_until
from tests.tracer.tapping import TapProcess
from tracer.models import Message

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CALLS = 300


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@pytest.mark.skipif(os.geteuid() != 0, reason="capturing lo:5672 needs root (CAP_NET_RAW)")
def test_it_stamps_each_trace_message_when_its_own_packet_arrived(scratch_vhost):
    capture = wire.WireCapture().start()  # before any connection: streams from their start
    try:
        with TapProcess(scratch_vhost):
            calls = wire_rpc.calls(default_broker().amqp_url(), scratch_vhost, CALLS, rate=150)
            wait_until(
                lambda: Message.objects.filter(vhost=scratch_vhost).count() >= 4 * len(calls),
                timeout=30,
                what="every event stored",
            )
    finally:
        capture.stop()
    stamps = {
        (event, bytes(body)): int(at.timestamp() * 1_000_000)
        for event, body, at in Message.objects.filter(vhost=scratch_vhost).values_list(
            "event", "body", "captured_at"
        )
    }
    split = wire.split(capture.messages, stamps, calls)
    tap = [abs(value) for value in split.tap_ms]
    broker = split.broker_ms
    print(
        f"\n{len(calls)} calls, {capture.packets:,} packets, {capture.kernel_drops} dropped by "
        f"the capture; per traced publish: broker median {statistics.median(broker):.3f} ms, "
        f"p99 {percentile(broker, 0.99):.3f} ms; tap median {statistics.median(tap):.4f} ms, "
        f"p99 {percentile(tap, 0.99):.4f} ms, max {max(tap):.4f} ms"
    )
    errors = {
        bytes(body): error
        for body, error in Message.objects.filter(vhost=scratch_vhost, event="publish").values_list(
            "body", "stamp_error_us"
        )
    }
    flagged = sum(1 for error in errors.values() if error)
    print(f"events capture flagged as possibly late (stamp_error_us > 0): {flagged}")
    assert len(calls) == CALLS
    assert capture.kernel_drops == 0
    assert split.unmatched == 0 and len(tap) == 2 * CALLS  # every request and reply publish
    # Each message carries the kernel's stamp of its own packet: the median error
    # is the kernel's, a fraction of a microsecond (0.2-0.3 us in every run,
    # disturbed ones too), where a reader stamping per read had 0.03 ms. The
    # tail is `bench wire`'s to measure (goal p99 < 0.5 ms) on a quiet machine:
    # on a virtual machine whose host takes its CPUs away now and then
    # (/proc/stat's steal), a reader stalled for milliseconds leaves packets
    # for the kernel to merge, and p99 came out at 0.8-1.4 ms (p95 0.76 ms
    # once) in runs where the broker's own p99 rose to 7-14 ms beside it
    # (2-4 ms otherwise). Those stalls also merge a call's two publishes now
    # and then (0-4 calls of 300 measured 0.00 ms that took 0.05 ms or more on
    # the wire), where the old reader did so to 50-70 % of the demo's flows.
    assert statistics.median(tap) < 0.005
    print(f"calls at 0.00 ms that the wire saw take 0.05 ms or more: {split.zero_but_not_on_wire}")
    assert split.zero_but_not_on_wire <= CALLS * 0.05
