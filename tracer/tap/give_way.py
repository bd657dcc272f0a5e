"""Indexing gives way to a busy machine: paused while the cores are taken by others.

Niceness alone did not keep indexing out of the traffic's way. `bench overhead`
measured the clients' throughput with the tap's indexing niced (nice 15) and
with it stopped for the load: 0.68 against 0.79 of tracing off, in one run. A
niced indexer still takes every moment a core is free, and the RPC traffic
leaves such moments between its round trips; it then fills the caches with its
own pages, and the broker's CPU a call rose by 15 % (392 to 450 µs). The
kernel's idle scheduling class (SCHED_IDLE) did no better. What the traffic
needs is indexing not running at all while the machine is busy.

So the tap measures, twice a second, the share of all the machine's cores that
everything but indexing used (the tap's own process and its feeders are
indexing; capture is not: it has to run). At PAUSE_AT or more, indexing pauses:
the feeders stop decoding, the writer takes no batch (what was decoded waits
in its inbox), and capture goes on reading, stamping and spooling as before.
It resumes once the others use less than RESUME_BELOW, or when the oldest
event waiting in the spool is `max_lag_s` old (WARREN_INDEX_PAUSE_MAX): a
machine busy for long still has
its events stored, at most that far behind while they are indexed, pausing
again once the lag is down to half. Nothing is lost either way: the spool
holds what waits (bounded by WARREN_SPOOL_MAX), and pages say that indexing is
paused and how far behind it is.
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Protocol

log = logging.getLogger("tracer.tap")

# Shares of all the cores used by everything but indexing (see the docstring).
PAUSE_AT: Final = 0.85
RESUME_BELOW: Final = 0.70
CHECK_S: Final = 0.5  # how often: /proc's clock ticks are 10 ms, 50 a core in that time
# /proc/stat's fields after "cpu": user nice system idle iowait irq softirq steal.
_IDLE_FIELDS: Final = (3, 4)
_COUNTED_FIELDS: Final = 8


@dataclass(frozen=True)
class CpuReading:
    """Clock ticks since boot: the machine's in all, its busy ones, and indexing's."""

    total: int
    busy: int
    own: dict[int, int]  # pid -> its user + system ticks


def read_cpu(pids: list[int], stat_path: str = "/proc/stat") -> CpuReading | None:
    """The machine's ticks and those of `pids` now; None where /proc cannot tell."""
    try:
        with open(stat_path, encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1 : 1 + _COUNTED_FIELDS]]
    except (OSError, ValueError):
        return None
    if len(fields) <= max(_IDLE_FIELDS):
        return None
    total = sum(fields)
    idle = sum(fields[index] for index in _IDLE_FIELDS)
    own = {}
    for pid in pids:
        ticks = process_ticks(pid)
        if ticks is not None:
            own[pid] = ticks
    return CpuReading(total=total, busy=total - idle, own=own)


def process_ticks(pid: int) -> int | None:
    """A process's user + system clock ticks (all its threads), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat:
            line = stat.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count after its end.
    after_name = line[line.rfind(")") + 2 :].split()
    try:
        return int(after_name[11]) + int(after_name[12])  # utime, stime
    except (IndexError, ValueError):
        return None


def others_share(before: CpuReading, after: CpuReading) -> float | None:
    """The share of all the cores that everything but indexing used between two readings.

    A process in one reading and not the other (started or ended between
    them) is left out of indexing's part: at most one interval counted wrong.
    """
    total = after.total - before.total
    if total <= 0:
        return None
    own = sum(
        max(0, after.own[pid] - before.own[pid]) for pid in after.own.keys() & before.own.keys()
    )
    busy = max(0, after.busy - before.busy - own)
    return min(1.0, busy / total)


@dataclass
class GiveWay:
    """Decides, reading after reading, whether indexing pauses (see the docstring).

    `max_lag_s` 0: never pauses.
    """

    max_lag_s: float
    paused: bool = False
    paused_s: float = 0.0  # in all, up to the last update
    reason: str = ""  # why it is paused, in words; "" while it runs
    _previous: CpuReading | None = None
    _paused_at: float = 0.0
    _catching_up: bool = False  # resumed for the lag: pauses again below half of it

    def update(self, reading: CpuReading | None, index_lag_s: float, now: float) -> bool:
        """Whether indexing is to pause, given a new reading and how far behind it is."""
        previous, self._previous = self._previous, reading
        if self.paused:
            self.paused_s += max(0.0, now - self._paused_at)
            self._paused_at = now
        share = None if previous is None or reading is None else others_share(previous, reading)
        if self.max_lag_s <= 0 or share is None:
            return self._set(False, now, "")
        if index_lag_s >= self.max_lag_s:
            self._catching_up = True
        elif index_lag_s < self.max_lag_s / 2:
            self._catching_up = False
        busy = share >= (RESUME_BELOW if self.paused else PAUSE_AT)
        if busy and not self._catching_up:
            return self._set(True, now, f"the machine is busy: others use {share:.0%} of its cores")
        return self._set(False, now, "")

    def _set(self, paused: bool, now: float, reason: str) -> bool:
        if paused and not self.paused:
            self._paused_at = now
        self.paused = paused
        self.reason = reason
        return paused


class Pausable(Protocol):
    """A vhost's reader, as the pauses see it (tracer/tap/reader.py)."""

    vhost: str

    def pause_indexing(self, paused: bool) -> None: ...

    def feeder_pid(self) -> int | None: ...


class IndexingPauses:
    """The tap's side: a thread that reads the CPU every CHECK_S, decides, and
    tells every feeder; the writer takes no batch while paused.

    A thread of its own at the tap's niceness: the writer, nicer still and
    busy with a batch when the load comes, decided seconds late.
    """

    def __init__(
        self,
        max_lag_s: float,
        readers: Callable[[], Iterable[Pausable]],
        index_lag_s: Callable[[], float],
    ) -> None:
        self.decision = GiveWay(max_lag_s=max_lag_s)
        self._readers = readers
        self._index_lag_s = index_lag_s
        self._stopping = threading.Event()

    @property
    def paused(self) -> bool:
        return self.decision.paused

    def start(self) -> None:
        """Start checking (from a thread at the tap's niceness: the thread inherits it)."""
        if self.decision.max_lag_s > 0:
            threading.Thread(target=self._run, name="tap-give-way", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        while not self._stopping.wait(CHECK_S):
            try:
                self.check()
            except Exception:  # a reading gone wrong must not end the checks
                log.exception("could not decide whether indexing gives way")

    def check(self) -> bool:
        """One decision, told to every feeder: whether indexing is paused."""
        readers = list(self._readers())
        # Indexing's processes: this one (the tap: its writer) and the feeders.
        pids = [os.getpid()] + [pid for r in readers if (pid := r.feeder_pid()) is not None]
        lag = self._index_lag_s()
        was = self.decision.paused
        paused = self.decision.update(read_cpu(pids), lag, time.monotonic())
        if paused != was:
            if paused:
                log.info("indexing pauses: %s", self.decision.reason)
            else:
                log.info("indexing resumes, %.1f s behind", lag)
        # Every time, not only on a change: a feeder started since hears it too.
        for reader in readers:
            reader.pause_indexing(paused)
        return paused
