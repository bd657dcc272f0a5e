"""Indexing gives way to a busy machine: the decision (tracer/tap/give_way.py), and
the figures it reads from /proc.

The tap with it, under real load, is in tests/tracer/test_index_pauses.py.
"""

import os
import subprocess
import sys
import time

from tests.busy_machine import SPIN
from tracer.tap.give_way import (
    PAUSE_AT,
    RESUME_BELOW,
    CpuReading,
    GiveWay,
    others_share,
    process_ticks,
    read_cpu,
)


class Machine:
    """Readings a second apart, as /proc would give them, fed to a GiveWay."""

    def __init__(self, give_way):
        self.give_way = give_way
        self.total = self.busy = self.own = 0
        self.second = 0
        give_way.update(self.reading(), 0.0, 0.0)  # the first reading: nothing to compare

    def reading(self):
        return CpuReading(total=self.total, busy=self.busy, own={1: self.own})

    def seconds(self, shares, lag=0.0, own_share=0.0):
        """Seconds in which others used `shares` of the cores; the decisions."""
        decisions = []
        for share in shares:
            self.second += 1
            self.total += 100
            self.own += round(own_share * 100)
            self.busy += round(share * 100) + round(own_share * 100)
            decisions.append(self.give_way.update(self.reading(), lag, float(self.second)))
        return decisions


def test_it_leaves_indexing_out_of_what_others_use():
    before = CpuReading(total=1000, busy=400, own={10: 50, 11: 20})
    after = CpuReading(total=1200, busy=580, own={10: 90, 11: 40})
    # 180 busy ticks of 200, 60 of them indexing's: others used 120 of 200.
    assert others_share(before, after) == 0.6


def test_it_counts_a_process_only_when_both_readings_have_it():
    before = CpuReading(total=1000, busy=400, own={10: 50})
    after = CpuReading(total=1100, busy=500, own={10: 60, 12: 500})
    assert others_share(before, after) == 0.9
    assert others_share(after, after) is None  # no time between them


def test_it_pauses_when_others_keep_the_cores_busy_and_resumes_when_they_stop():
    give_way = GiveWay(max_lag_s=30)
    decisions = Machine(give_way).seconds([0.5, 0.9, 0.95, 0.75, 0.6, 0.2])
    # Paused at PAUSE_AT; still paused at 0.75 (RESUME_BELOW is lower), resumed below it.
    assert decisions == [False, True, True, True, False, False]
    assert give_way.paused_s == 3.0
    assert PAUSE_AT > 0.75 >= RESUME_BELOW > 0.6


def test_it_does_not_count_its_own_work_as_the_machine_being_busy():
    # Indexing itself takes most of the cores (catching up): no pause.
    machine = Machine(GiveWay(max_lag_s=30))
    assert machine.seconds([0.1, 0.1], own_share=0.85) == [False, False]


def test_it_indexes_anyway_once_the_oldest_event_waited_the_longest_pause():
    give_way = GiveWay(max_lag_s=10)
    machine = Machine(give_way)
    assert machine.seconds([0.95], lag=9.9) == [True]
    assert machine.seconds([0.95, 0.95], lag=10.0) == [False, False]
    # Caught up to half the bound, it gives way again.
    assert machine.seconds([0.95], lag=6.0) == [False]
    assert machine.seconds([0.95], lag=4.9) == [True]
    assert give_way.reason == "the machine is busy: others use 95% of its cores"
    assert give_way.paused_s == 1.0  # the first pause's second; the second pause's counts next
    assert machine.seconds([0.95], lag=5.5) == [True]
    assert give_way.paused_s == 2.0


def test_it_never_pauses_with_no_bound_or_no_figures():
    assert Machine(GiveWay(max_lag_s=0)).seconds([1.0, 1.0]) == [False, False]
    give_way = GiveWay(max_lag_s=30)
    assert give_way.update(None, 0.0, 0.0) is False
    assert give_way.update(None, 0.0, 1.0) is False


def test_it_reads_the_machines_ticks_and_a_busy_processs_own():
    burner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        first = read_cpu([burner.pid])
        time.sleep(1.0)
        second = read_cpu([burner.pid])
    finally:
        burner.kill()
        # The kernel's own count of the CPU it used, to the end.
        _, _, usage = os.wait4(burner.pid, 0)
    assert first is not None and second is not None
    spent = second.own[burner.pid] - first.own[burner.pid]
    used_ticks = (usage.ru_utime + usage.ru_stime) * os.sysconf("SC_CLK_TCK")
    # What /proc said it had used by the second reading is what the kernel
    # counted to its end, but for the moment between that reading and the kill.
    assert second.own[burner.pid] <= used_ticks + 1
    assert used_ticks - second.own[burner.pid] <= 20
    # It spun for the second between the readings, on a core of its own or not
    # (a busy test run shares them): the machine's busy ticks count it too.
    assert spent > 0
    assert second.busy - first.busy >= spent
    assert second.total - first.total >= 100 * 0.9  # a second of one core at least
    share = others_share(first, second)
    assert share is not None and 0.0 <= share <= 1.0


def test_it_says_nothing_of_a_process_that_is_gone():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert process_ticks(gone.pid) is None
    reading_now = read_cpu([gone.pid])
    assert reading_now is not None and reading_now.own == {}
    assert read_cpu([], stat_path="/nonexistent/stat") is None
