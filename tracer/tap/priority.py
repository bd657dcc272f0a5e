"""The capture process's reading thread, ahead of everything else where allowed."""

import os
import threading

PRIORITY_BOOST = 5  # niceness taken off where real-time scheduling is refused


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
