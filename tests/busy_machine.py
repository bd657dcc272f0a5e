"""A machine kept busy on purpose: one spinning process a core, each ending by itself."""

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

SPIN_AT_MOST_S = 120  # each spinner ends by itself, whatever happens to the test
SPIN = f"import time\nend = time.monotonic() + {SPIN_AT_MOST_S}\nwhile time.monotonic() < end: pass"


@contextlib.contextmanager
def busy_machine() -> Iterator[None]:
    """One spinning process a core this test may run on, stopped on leaving."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in os.sched_getaffinity(0)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
