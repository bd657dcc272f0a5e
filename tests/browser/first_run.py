"""Warren started as `make run` starts it, and `make demo` beside it, for the first-run test.

`make run` migrates the database, creates the administrator (printing its
password once) and starts the Procfile's processes under honcho: Daphne, the
tap without --vhost (it follows the traced-vhost choice stored in the
database) and a Celery worker with beat. This does the same with the same
commands, on an empty SQLite database of its own and a free port. It differs
from a shell's `make run` only where running beside other tests asks for it:

- no `make` (its `venv` step could reinstall the shared virtualenv mid-test) and
  no `collectstatic` (it writes into the checkout; WhiteNoise serves static/
  through Django's finders without it);
- a Redis database of its own, so its worker never takes another run's Celery
  tasks and its live events reach no other run's pages;
- capture's spool in the test's folder.

honcho starts each process in a session (process group) of its own and stops
them all on SIGTERM; `stop` also kills any group honcho left behind.
"""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
# Not 0 (Warren's default, a developer's running Warren), 15 or 14 (the test runs).
OWN_REDIS_DATABASE = 13
ADMIN_PASSWORD = re.compile(r"Created administrator '(?P<user>[^']+)' with password: (?P<pw>\S+)")
STOP_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _own_redis_url(url: str) -> str:
    parts = urlsplit(url or "redis://127.0.0.1:6379/0")
    return urlunsplit(parts._replace(path=f"/{OWN_REDIS_DATABASE}"))


def run_environment(folder: Path, port: int) -> dict[str, str]:
    """The environment `make run` gives its processes, with the defaults a fresh clone has."""
    env = dict(os.environ)
    # What the test run sets for itself, or a shell might, not what a fresh clone has
    # (the administrator's password must be generated and printed).
    for name in (
        "DATABASE_URL",
        "WARREN_INDEX_NICENESS",
        "WARREN_INDEX_PAUSE_MAX",
        "WARREN_TAP_NICENESS",
        "WARREN_TRACE_VHOSTS",
        "WARREN_ADMIN_USER",
        "WARREN_ADMIN_PASSWORD",
        "DJANGO_ALLOW_ASYNC_UNSAFE",
    ):
        env.pop(name, None)
    for name in [name for name in env if name.startswith("PYTEST_")]:
        env.pop(name)
    env.update(
        DATABASE_URL=f"sqlite:///{folder / 'warren.sqlite3'}",
        WARREN_PORT=str(port),
        WARREN_SPOOL_DIR=str(folder / "spool"),
        REDIS_URL=_own_redis_url(os.environ.get("REDIS_URL", "")),
        PYTHONUNBUFFERED="1",
    )
    return env


class CommandFailed(RuntimeError):
    """A management command exited with an error."""


def manage(env: dict[str, str], *args: str, timeout: float = 120.0) -> str:
    """`python manage.py ARGS` as the Makefile runs it; its output (stdout and stderr)."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise CommandFailed(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{output}")
    return output


def _children(pid: int) -> list[int]:
    """The direct children of `pid` (honcho's processes), from /proc."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text()
            found += [int(child) for child in text.split()]
    except OSError:
        pass
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_groups(process: subprocess.Popen[bytes], groups: Iterable[int]) -> None:
    """SIGTERM to `process` (which stops what it runs), then SIGKILL to every group left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT_S)
    deadline = time.monotonic() + 5.0
    groups = set(groups) | {process.pid}
    while any(_group_alive(pgid) for pgid in groups) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pgid in groups:
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()
    process.wait(5)


@dataclass
class Started:
    """A running `make run`: where it answers, how to log in, its log."""

    base_url: str
    username: str
    password: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes]
    groups: set[int] = field(default_factory=set)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-8000:]

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"honcho exited ({self.process.returncode}):\n{self.output()}")
        self.groups |= set(_children(self.process.pid))
        return True

    def stop(self) -> None:
        if self.process.poll() is None:
            self.groups |= set(_children(self.process.pid))
        stop_groups(self.process, self.groups)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except OSError:
        return False


def make_run(folder: Path, timeout: float = 90.0) -> Started:
    """Migrate, create the administrator, start the Procfile under honcho; once Daphne answers."""
    port = free_port()
    env = run_environment(folder, port)
    manage(env, "migrate", "--noinput")
    said = manage(env, "ensure_admin")
    printed = ADMIN_PASSWORD.search(said)
    if printed is None:
        raise RuntimeError(f"ensure_admin printed no password:\n{said}")
    log = folder / "make-run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "honcho"), "start"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = Started(
        base_url=f"http://127.0.0.1:{port}",
        username=printed["user"],
        password=printed["pw"],
        env=env,
        log=log,
        process=process,
    )
    deadline = time.monotonic() + timeout
    try:
        while not _answers(started.base_url + "/login/"):
            started.alive()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Warren did not answer within {timeout:g} s:\n{started.output()}"
                )
            time.sleep(0.2)
        started.alive()
    except BaseException:
        started.stop()
        raise
    return started


@dataclass
class Demo:
    """A running `python manage.py demo`, in a process group of its own."""

    process: subprocess.Popen[bytes]
    log: Path
    started_at: float  # time.monotonic() when it was started
    started_us: int  # the same moment, microseconds since the epoch (the tap's stamps)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        stop_groups(self.process, ())


def make_demo(run: Started) -> Demo:
    """`make demo`: `python manage.py demo`, with the environment `make run` has."""
    log = run.log.parent / "make-demo.log"
    with log.open("wb") as out:
        started_us = time.time_ns() // 1000
        started_at = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "manage.py", "demo"],
            cwd=ROOT,
            env=run.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Demo(process=process, log=log, started_at=started_at, started_us=started_us)
