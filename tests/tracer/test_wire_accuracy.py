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
    assert statistics.median(tap) < 0.05
    assert percentile(tap, 0.99) < 0.5
    # No call measured as 0.00 ms that the wire saw take a measurable time.
    assert split.zero_but_not_on_wire == 0
