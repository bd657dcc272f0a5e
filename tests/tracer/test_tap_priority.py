"""Who runs first: the traffic, then capture's reading, then the rest of the tap, then indexing.

Read from /proc, as the kernel schedules them: each thread's niceness and
scheduling policy, in the tap's own process and in its capture and feeder.
"""

import os
from pathlib import Path

import pytest

from tests.polling import wait_until
from tests.tracer.tapping import TapProcess, child_pids
from tracer.tap.priority import real_time_allowed

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def threads(pid):
    """{thread id: (niceness, policy)} of a process, from /proc/PID/task/TID/stat."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
        # After the command's ")": field 3 is fields[0]; nice is field 19, policy field 41.
        found[int(task.name)] = (int(fields[16]), int(fields[38]))
    return found


def one_child(tap, module):
    pids = child_pids(tap.process.pid, module)
    return pids[0] if pids else None


@pytest.mark.parametrize("setting", [None, "0"], ids=["by-default", "tap-niceness-0"])
def test_it_runs_behind_the_traffic_with_capture_reading_first(scratch_vhost, setting):
    base = os.getpriority(os.PRIO_PROCESS, 0)
    # The defaults (the test run sets both to 0 for the other tests: pyproject.toml).
    env = {"WARREN_TAP_NICENESS": setting, "WARREN_INDEX_NICENESS": None}
    allowed = real_time_allowed()
    background = 10 if setting is None and allowed else 0
    expected_tap = min(19, base + background)
    expected_index = min(19, expected_tap + 5)

    with TapProcess(scratch_vhost, env=env) as tap:

        def settled():
            capture, feeder = (one_child(tap, m) for m in ("tracer.tap.capture", "tracer.tap.feed"))
            if capture is None or feeder is None:
                return False
            policies = [policy for _, policy in threads(capture).values()]
            writer_ready = any(
                nice == expected_index for nice, _ in threads(tap.process.pid).values()
            )
            return (os.SCHED_RR in policies or not allowed) and writer_ready

        try:
            wait_until(settled, 30, what="capture's reading to run first and the writer niced")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{tap.output()}") from None

        capture = one_child(tap, "tracer.tap.capture")
        feeder = one_child(tap, "tracer.tap.feed")
        tap_threads = threads(tap.process.pid)
        capture_threads = threads(capture)
        feeder_threads = threads(feeder)
        log = tap.output()

    # The tap's own threads: at the tap's niceness, its writer nicer still.
    assert {nice for nice, _ in tap_threads.values()} <= {expected_tap, expected_index}
    assert all(policy == os.SCHED_OTHER for _, policy in tap_threads.values())
    # Indexing: the feeder, all of it, as nice as the writer.
    assert {nice for nice, _ in feeder_threads.values()} == {expected_index}
    # Capture: its reading thread at real-time priority where allowed, the
    # committer (waiting on the disk) at the tap's niceness.
    rr = [tid for tid, (_, policy) in capture_threads.items() if policy == os.SCHED_RR]
    others = {nice for tid, (nice, _) in capture_threads.items() if tid not in rr}
    if allowed:
        assert len(rr) == 1
        assert others == {expected_tap}
        # Started at the niceness the tap was started with, not the tap's
        # background one, so that its start waits on no one (the reading
        # thread keeps it; real-time scheduling ignores it from then on).
        assert capture_threads[rr[0]][0] == base
    else:
        assert rr == []
    if setting is None and allowed:
        assert f"the tap runs as a background service at nice {expected_tap}" in log
    elif setting == "0":
        assert "the tap runs at the priority it was started with (WARREN_TAP_NICENESS=0)" in log
    else:
        assert "real-time scheduling is refused here" in log
