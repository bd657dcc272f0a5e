"""What every benchmark shares: a scratch vhost, the tap as a subprocess, tables.

Loopback only: a benchmark creates a vhost (and deletes it, with whatever the
rabbitmq_tracing plugin wrote for it), so it refuses any broker that is not on
this machine.
"""

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.db import connection

from rabbit.brokers import default_broker

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
EVENTS_PER_CALL = 4  # request, its delivery, reply, reply delivery


class BenchError(Exception):
    """A benchmark cannot run here (not loopback, broker away, ...)."""


@dataclass
class Row:
    figure: str
    goal: str
    measured: str
    reference: str = ""
    ok: bool | None = None


@dataclass
class Report:
    name: str
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def add(self, figure, goal, measured, reference="", ok=None):
        self.rows.append(Row(figure, goal, measured, reference, ok))

    def note(self, text):
        self.notes.append(text)

    def render(self):
        header = ("figure", "goal", "measured", "side by side", "")
        lines = [
            (
                row.figure,
                row.goal,
                row.measured,
                row.reference,
                "" if row.ok is None else ("ok" if row.ok else "MISSED"),
            )
            for row in self.rows
        ]
        widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(5)]
        out = [f"== {self.name} ==  (load average {load_average()})"]
        for line in [header, tuple("-" * w for w in widths), *lines]:
            out.append(
                "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
            )
        out.extend(f"  note: {text}" for text in self.notes)
        return "\n".join(out)


def load_average():
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def broker():
    config = default_broker()
    for url in (config.management_url, config.amqp_url()):
        host = urlsplit(url).hostname or ""
        if host not in LOOPBACK:
            raise BenchError(f"benchmarks run against a loopback broker only, not {host!r}")
    return config


@contextlib.contextmanager
def scratch_vhost(prefix="warren-bench"):
    """A fresh vhost, deleted afterwards with its traces and their files."""
    config = broker()
    client = config.client()
    vhost = f"{prefix}-{secrets.token_hex(4)}"
    client.create_vhost(vhost, description="Warren benchmark scratch vhost")
    try:
        yield vhost, client, config
    finally:
        with contextlib.suppress(Exception):
            for trace in client.traces(vhost) or ():
                client.delete_trace(vhost, trace["name"])
        with contextlib.suppress(Exception):
            for item in client.get("trace-files") or ():
                if item["name"].startswith(vhost):
                    client.delete(f"trace-files/{quote(item['name'], safe='')}")
        client.delete_vhost(vhost)


def database_url():
    """The database this process uses, as a DATABASE_URL for a subprocess."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "postgres", safe="")
    password = db.get("PASSWORD")
    auth = f"{user}:{quote(password, safe='')}" if password else user
    return (
        f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


class TapProcess:
    """`manage.py tap --vhost V` as a subprocess on a given database."""

    def __init__(self, vhost, database, args=(), profile=False, niceness=0, env=None):
        self.vhost = vhost
        self.niceness = niceness
        self.profile = (
            Path(tempfile.mkstemp(prefix="warren-tap-", suffix=".spy")[1]) if profile else None
        )
        # Its spool in a folder of its own, gone with the run (stop()).
        self.spool_dir = tempfile.mkdtemp(prefix="warren-bench-spool-")
        self.env = dict(
            os.environ,
            DATABASE_URL=database,
            REDIS_URL=bench_redis_url(),
            WARREN_SPOOL_DIR=self.spool_dir,
            **(env or {}),
        )
        self.args = list(args)
        self.process = None
        self.log = None

    def start(self):
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="warren-bench-tap-", suffix=".log", delete=False
        )
        command = [sys.executable, "manage.py", "tap", "--vhost", self.vhost, *self.args]
        if self.niceness:
            command = ["nice", "-n", str(self.niceness), *command]
        if self.profile:
            spy = Path(sys.executable).with_name("py-spy")
            command = [str(spy), "record", "--format", "raw", "--rate", "100", "--subprocesses",
                       "-o", str(self.profile), "--", *command]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self

    def alive(self):
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self):
        """The tap's own process (under py-spy: its child)."""
        if self.profile and self.process is not None:
            children = child_pids(self.process.pid)
            return children[0] if children else self.process.pid
        return self.process.pid

    def profile_summary(self, top=12):
        """Where the tap's processes spent their samples, from py-spy's raw output."""
        if not self.profile or not self.profile.exists():
            return "no profile"
        by_process, leaves, total = {}, {}, 0
        for line in self.profile.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = stack.split(";")
            process = "feeder" if any("tap_feed.py" in frame for frame in frames) else "tap"
            name = frames[-1].split(" (")[0]
            by_process[process] = by_process.get(process, 0) + int(count)
            leaves[(process, name)] = leaves.get((process, name), 0) + int(count)
            total += int(count)
        lines = [f"profile (py-spy samples, busy time only; raw stacks in {self.profile}):"]
        lines += [f"  {process}: {count / total:.0%}" for process, count in by_process.items()]
        ranked = sorted(leaves.items(), key=lambda item: -item[1])[:top]
        lines += [
            f"  {count / total:6.1%}  {process:6}  {name}" for (process, name), count in ranked
        ]
        return "\n".join(lines)

    def output(self):
        return Path(self.log.name).read_text(errors="replace")[-4000:] if self.log else ""

    def stop(self):
        if self.alive():
            if self.profile:
                os.kill(self.pid, signal.SIGTERM)  # py-spy writes its file when the tap ends
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(30)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.log is not None:
            self.log.close()
            Path(self.log.name).unlink(missing_ok=True)
            self.log = None
        shutil.rmtree(self.spool_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def rss_mb(pid, children=True):
    """Resident memory of a process (and its children), in MB (Linux /proc)."""
    total = 0
    for one in [pid, *child_pids(pid)] if children else [pid]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024.0


def queue_stats(client, vhost, name):
    try:
        return client.queue(vhost, name)
    except Exception:  # noqa: BLE001 - a queue not there yet counts as empty
        return {}


def percentile(values, fraction):
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def stored_count(vhost):
    from tracer.models import Message

    return Message.objects.filter(vhost=vhost).count()


def wait_until(predicate, timeout, every=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()


@contextlib.contextmanager
def scratch_database(url=None):
    """A fresh, migrated database for a tap to fill: a temporary SQLite file
    unless `url` names one (then it is used as it is, and kept)."""
    if url:
        yield url
        return
    directory = tempfile.mkdtemp(prefix="warren-bench-db-")
    path = Path(directory) / "bench.sqlite3"
    url = f"sqlite:///{path}"
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            env=dict(os.environ, DATABASE_URL=url),
            check=True,
        )
        yield url
    finally:
        for item in Path(directory).iterdir():
            item.unlink(missing_ok=True)
        Path(directory).rmdir()


class MessageCounter:
    """Counts stored messages of a vhost straight from a database URL (no Django)."""

    def __init__(self, url):
        self.url = url
        if url.startswith("sqlite:///"):
            import sqlite3

            self._conn = sqlite3.connect(url[len("sqlite:///") :], timeout=20)
            self._sql = "SELECT count(*) FROM tracer_message WHERE vhost = ?"
        else:
            import psycopg

            self._conn = psycopg.connect(url.replace("postgres://", "postgresql://", 1))
            self._conn.autocommit = True
            self._sql = "SELECT count(*) FROM tracer_message WHERE vhost = %s"

    def count(self, vhost):
        try:
            return self._conn.execute(self._sql, (vhost,)).fetchone()[0]
        except Exception:  # noqa: BLE001 - busy or not there yet
            return 0

    def query(self, sql, params=()):
        if not self.url.startswith("sqlite:///"):
            sql = sql.replace("?", "%s")
        return self._conn.execute(sql, params).fetchall()

    def close(self):
        self._conn.close()


def cpu_seconds(pid, children=True):
    """User + system CPU of a process (and its children) so far (Linux /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for one in [pid, *child_pids(pid)] if children else [pid]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def cpu_seconds_by_part(pid):
    """CPU so far of a tap and its helpers, by part: {"capture", "feeder", "writer"}
    (the tap's own process pairs and stores); Linux /proc, 10 ms a tick."""
    parts = {"capture": 0.0, "feeder": 0.0, "writer": 0.0}
    for one in [pid, *child_pids(pid)]:
        with contextlib.suppress(OSError):
            command = command_line(one)
            part = (
                "capture" if b"tracer.tap.capture" in command
                else "feeder" if b"tracer.tap.feed" in command
                else "writer"
            )  # fmt: skip
            parts[part] += cpu_seconds(one, children=False)
    return parts


def command_line(pid):
    """A process's command line as /proc holds it (b"" when it is gone)."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


def child_pids(pid):
    children = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                children += [
                    int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                ]
    return children


def bench_redis_url():
    """The configured Redis with database 14: a benchmark's live events stay its own."""
    parts = urlsplit(settings.REDIS_URL)
    return parts._replace(path="/14").geturl()


@contextlib.contextmanager
def environment(**values):
    """os.environ with these values (None: unset) for a while, as before afterwards."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update({name: value for name, value in values.items() if value is not None})
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
