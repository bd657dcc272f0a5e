"""`python manage.py demo`: runs the workloads as live traffic and stops cleanly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from rabbit.management_http import segment
from tests.conftest import unique_name
from tests.polling import wait_until
from workloads import WORKLOADS

PROJECT = Path(settings.BASE_DIR)


def _demo(*args):
    return [sys.executable, str(PROJECT / "manage.py"), "demo", *args]


def _env():
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _connection_names(mgmt, vhost):
    return sorted(
        (c.get("client_properties") or {}).get("connection_name", "")
        for c in mgmt.get(f"vhosts/{segment(vhost)}/connections")
    )


@pytest.mark.serial  # timed (and calls counted per second): alone, after the parallel run
@pytest.mark.timeout(60)
def test_it_runs_one_workload_for_a_duration_and_exits_cleanly(mgmt, scratch_vhost):
    started = time.monotonic()
    done = subprocess.run(
        _demo("--only", "fibonacci", "--vhost", scratch_vhost, "--duration", "3", "--rate", "5"),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=PROJECT,
        env=_env(),
    )
    took = time.monotonic() - started

    assert done.returncode == 0, done.stderr
    assert "Running 1 workloads in vhost" in done.stdout
    stopped = next(line for line in done.stdout.splitlines() if line.startswith("Stopped."))
    sent = int(stopped.split("fibonacci ", 1)[1].split(" sent", 1)[0])
    assert 5 <= sent <= 20  # 3 s at 5 calls per second
    assert f"{sent} sent, {sent} answered" in stopped
    assert took < 15
    # Only the Fibonacci topology was declared; it stays for the console to show.
    assert [queue["name"] for queue in mgmt.queues(scratch_vhost)] == ["rpc_queue"]
    assert mgmt.vhost(scratch_vhost)["tracing"] is False  # the tap's business unless --trace


@pytest.mark.timeout(60)
def test_it_creates_its_vhost_traces_when_asked_and_stops_on_sigterm(mgmt):
    vhost = unique_name("warren-test-demo")
    process = subprocess.Popen(
        _demo("--only", "weather,sender_receiver", "--vhost", vhost, "--trace"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT,
        env=_env(),
    )
    try:
        assert process.stdout.readline().startswith(f"Created vhost '{vhost}'")
        assert process.stdout.readline().startswith("Tracing is on")
        lines = [process.stdout.readline() for _ in range(2)]
        # (Warren's stored choice of traced vhosts may say a line of its own first.)
        assert any(line.startswith("Running 2 workloads") for line in lines), lines
        assert mgmt.vhost(vhost)["tracing"] is True
        # The workloads connect in no set order: wait for all of them.
        expected = {"demo weather client", "demo sports daemon", "demo sender", "demo receiver 2"}
        wait_until(
            lambda: _connection_names(mgmt, vhost),
            check=lambda names: expected <= set(names),
            timeout=15,
            interval=0.5,
            what=f"the connections {sorted(expected)}",
        )

        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
        assert process.returncode == 0, err
        assert "Stopped. weather" in out
        wait_until(
            lambda: _connection_names(mgmt, vhost),
            check=lambda names: names == [],
            timeout=10,
            interval=0.5,
            what="the workloads' connections to close",
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        mgmt.delete_vhost(vhost)


def test_it_refuses_an_unknown_workload(scratch_vhost):
    done = subprocess.run(
        _demo("--only", "fibonacci,tea_party", "--vhost", scratch_vhost, "--duration", "1"),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=PROJECT,
        env=_env(),
    )

    assert done.returncode != 0
    assert "unknown workload tea_party" in done.stderr
    assert "control_centre_no_correlation" in done.stderr


def test_it_offers_every_seed_workload_by_name():
    assert set(WORKLOADS) == {
        "fibonacci",
        "control_centre",
        "control_centre_no_correlation",
        "direct_reply_to",
        "weather",
        "pipes_and_filters",
        "sender_receiver",
        "slow_failing",
    }
    assert all(callable(module.run_forever) for module in WORKLOADS.values())
