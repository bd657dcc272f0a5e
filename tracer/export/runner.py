"""The exporter loop: folds settled flows into /metrics' totals, keeps the tap's
counters past retention and, with WARREN_OTLP_ENDPOINT, sends flows as spans.

`python manage.py tap` starts it as a child process of its own (`start`), niced,
so its work never takes the tap's time (nor its interpreter's lock), and stops
it with the tap (`stop`). It only reads what the tap has stored and writes its
own tables; if it dies, the tap goes on and the next start resumes from the
stored positions.
"""

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Protocol

from django.conf import settings
from django.db import DatabaseError, close_old_connections

log = logging.getLogger("tracer.export")

PAUSE_S = 1.0
AWAY_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
NICENESS = 10


class Stopping(Protocol):
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class StopFlag:
    """Set from a signal handler: a plain flag, since a threading.Event set there
    could deadlock on its own lock if the signal lands inside its wait."""

    def __init__(self) -> None:
        self.flag = False

    def set(self) -> None:
        self.flag = True

    def is_set(self) -> bool:
        return self.flag

    def wait(self, timeout: float | None = None) -> bool:
        deadline = time.monotonic() + (timeout or 0.0)
        while not self.flag and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.flag


def run_exporter(stop: Stopping, pause_s: float = PAUSE_S, parent_pid: int = 0) -> None:
    """Until `stop` is set (or the parent process is gone): fold, mirror and
    export, then wait `pause_s`."""
    from tracer.export import metrics, otlp

    pipe = otlp.pipeline() if settings.WARREN_OTLP_ENDPOINT else None
    failures, next_export = 0, 0.0
    try:
        while not stop.is_set():
            if parent_pid and os.getppid() != parent_pid:
                log.warning("export loop: the tap is gone, stopping")
                return
            close_old_connections()
            try:
                metrics.fold_settled()
                metrics.mirror_tap_sessions()
                if pipe is not None and time.monotonic() >= next_export:
                    while not stop.is_set():
                        done = otlp.export_pending(pipe)
                        if done.lost:
                            failures += 1
                            backoff = AWAY_BACKOFF_S[min(failures, len(AWAY_BACKOFF_S)) - 1]
                            next_export = time.monotonic() + backoff
                            log.warning(
                                "OTLP receiver did not take %d spans; next try in %.0f s",
                                done.lost,
                                backoff,
                            )
                            break
                        failures = 0
                        if done.flows < otlp.BATCH_FLOWS:
                            break
            except DatabaseError as error:
                log.warning("export loop: the database is not available (%s)", error)
            stop.wait(pause_s)
    finally:
        if pipe is not None:
            pipe.shutdown()


def main() -> None:
    """`python -m tracer.export.runner TAP_PID`: the loop as the tap's child process.

    The tap names its pid: a tap killed before this even started is noticed at
    once (its parent then is already init, which os.getppid() alone would take)."""
    parent_pid = int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid()
    if os.getppid() != parent_pid:
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    stopping = StopFlag()
    # The tap's Ctrl-C reaches its whole process group: the tap decides when this stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run_exporter(stopping, parent_pid=parent_pid)


def start(stopping: threading.Event | None = None) -> subprocess.Popen[bytes]:
    """The exporter loop in a child process of its own (nothing of the tap shared).

    With `stopping` (the tap's own event), the loop is told to stop the moment
    the tap begins to, so both wind down at once within the tap's stop grace.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "tracer.export.runner", str(os.getpid())], cwd=settings.BASE_DIR
    )
    if stopping is not None:

        def relay() -> None:
            stopping.wait()
            with contextlib.suppress(ProcessLookupError):
                process.terminate()

        threading.Thread(target=relay, name="export-stop", daemon=True).start()
    return process


def stop(process: subprocess.Popen[bytes], grace_s: float = 1.0) -> None:
    """Asks the loop to stop (SIGTERM), and kills it if it has not within
    `grace_s`: its work is transactional (position and totals commit together),
    so nothing is lost."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(2.0)


if __name__ == "__main__":
    main()
