"""Who runs first: the traffic Warren watches, then capture's reading, then the rest.

Capture's reading thread runs ahead of everything where allowed (its stamps
depend on it, `raise_priority`); everything else of the tap, including the
indexing that decodes, pairs and stores, is a background service that yields
the cores to the broker and its clients (`run_in_background`), and the
indexer runs nicer still (WARREN_INDEX_NICENESS).
"""

import contextlib
import os
import threading

PRIORITY_BOOST = 5  # niceness taken off where real-time scheduling is refused
# The niceness the tap was started with, once run_in_background made it nicer.
_started_niceness: int | None = None


def raise_priority() -> str:
    """Run the reading thread ahead of everything else where allowed.

    A packet left unread in the socket while the reader waits for a core is
    merged by the kernel with the next one, and takes its later stamp: what
    the reader's wake-up latency costs is stamp accuracy (the wire test and
    `bench wire` measure it). Real-time round robin at the lowest real-time
    priority (root, or CAP_SYS_NICE) wakes it at once; the kernel still keeps
    5 % of every second for other tasks (sched_rt_runtime_us), and the thread
    spends its time waiting on the socket. Else nice -5 where allowed, else as
    it is (the indexer runs niced below it anyway: WARREN_INDEX_NICENESS).
    This thread only: the committer, waiting on the disk, stays ordinary.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
        return "real-time"
    except (OSError, AttributeError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -PRIORITY_BOOST)
        return "nice -5"
    except OSError:
        return "ordinary"


def real_time_allowed() -> bool:
    """Whether this process may use real-time scheduling (root, CAP_SYS_NICE)."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
    except (OSError, AttributeError):
        return False
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return True


def run_in_background(niceness: int) -> str:
    """Make the calling thread, and every thread and process it starts after,
    `niceness` nicer (WARREN_TAP_NICENESS); call it before any other starts.

    On two cores shared with the broker and its clients, the tap at the same
    priority as them took the cores when they wanted them, and the clients'
    throughput paid: in four runs of `bench overhead` the clients kept
    0.65-0.74 of their untraced rate with the tap at nice 10 and 0.50-0.59
    with it at nice 0, beside 0.57-0.67 with the broker's own tracing plugin.
    Nothing of the tap needs a core the moment it wants one except capture's
    reading thread, and that one takes real-time priority, which ignores
    niceness. Only where it may: a process refused real-time scheduling could
    not raise its capture again from here, and then only the indexer runs
    nicer (WARREN_INDEX_NICENESS).
    """
    if niceness <= 0:
        return "at the priority it was started with (WARREN_TAP_NICENESS=0)"
    if not real_time_allowed():
        return (
            "at the priority it was started with: real-time scheduling is refused here, "
            "so capture could not be raised again"
        )
    global _started_niceness
    now = os.getpriority(os.PRIO_PROCESS, 0)
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), now + niceness)
    _started_niceness = now
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    return f"as a background service at nice {nice} (capture's reading at real-time priority)"


def start_unniced(pid: int) -> None:
    """Give a process just started by the backgrounded tap (capture) the
    niceness the tap was started with, until it raises its reading thread.

    Started at the tap's niceness, capture waited for a core through its
    start (the interpreter, its imports, the spool, the connection) whenever
    the load kept the cores busy: 26 s once beside eight busy test workers,
    longer than the tap waits for it, while the broker queued what was traced.
    Only its first thread: the committer it starts later sets its own
    (`background_niceness`).
    """
    if _started_niceness is not None:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, _started_niceness)


def background_niceness() -> int | None:
    """The niceness of the backgrounded tap, for capture's committer (None: not backgrounded)."""
    return None if _started_niceness is None else os.getpriority(os.PRIO_PROCESS, 0)


def set_thread_niceness(niceness: int | None) -> None:
    """The calling thread's niceness (a thread's own, on Linux), where allowed."""
    if niceness is not None:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
