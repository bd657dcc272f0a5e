"""A broker restart in the middle of a run: the tap comes back, tracing is on, the gap shows.

Slow (about 20 s) and disruptive for a moment — every connection to the broker
drops — so there is only this one, and the broker is started again whatever
happens.
"""

import subprocess
import time

import pytest

from tests.polling import wait_until
from tests.tracer.rpc import sequential_calls
from tests.tracer.tapping import TapProcess, tracing_on
from tracer.models import Flow, TapGap

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def rabbitmqctl(*args, timeout=60):
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=timeout)


def broker_answers(mgmt):
    try:
        mgmt.overview()
    except Exception:  # noqa: BLE001 - not up yet
        return False
    return True


def test_it_comes_back_after_a_broker_restart(scratch_vhost, mgmt):
    with TapProcess(scratch_vhost) as tap:
        sequential_calls(scratch_vhost, 5)
        wait_until(
            lambda: Flow.objects.filter(status="complete").count() == 5,
            timeout=15.0,
            what="5 complete flows",
        )
        stopped_at = time.time()
        try:
            assert rabbitmqctl("stop_app").returncode == 0
        finally:
            started = rabbitmqctl("start_app")
            wait_until(lambda: broker_answers(mgmt), timeout=30, interval=0.2, what="the broker")
        assert started.returncode == 0, started.stderr
        # A full restart forgets tracing; stop_app keeps it, so forget it here as one would.
        mgmt.set_tracing(scratch_vhost, False)
        wait_until(
            lambda: tracing_on(mgmt, scratch_vhost),
            timeout=30,
            interval=0.2,
            what="the tap to switch tracing back on",
        )
        tap.wait_connected(timeout=30)
        sequential_calls(scratch_vhost, 5)
        wait_until(
            lambda: Flow.objects.filter(status="complete").count() == 10,
            timeout=20,
            what="flows after the restart",
        )
        assert tap.process.poll() is None
    gap = TapGap.objects.filter(vhost=scratch_vhost).order_by("started_at").first()
    assert gap is not None and gap.reason in ("connection lost", "tracing was off")
    assert gap.started_at.timestamp() >= stopped_at - 1
    assert gap.ended_at > gap.started_at
