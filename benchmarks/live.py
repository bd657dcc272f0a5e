"""End to end on one machine: Daphne, the tap, a workload and a browser page.

`run_live_benchmark` drives RPC calls through the real tap (four firehose
events a call) with the Live flows page open in headless Chromium, and
measures what an operator would feel: how long an event takes from the tap's
stamp to a row on screen, and how busy the page's main thread is. The same
process helpers start the server and the tap for the browser tests.

Loopback only: it creates (and deletes) a scratch vhost and a temporary user,
so it refuses to run against a broker on another machine.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
EVENTS_PER_CALL = 4  # request, its delivery, reply, reply delivery
LOAD_CLIENTS = 1

# Measures the main thread in the page from its first script on: long tasks
# (over 50 ms) as the browser reports them.
PAGE_PROBE = """
(() => {
  const probe = (window.__warrenProbe = { longTasks: 0, longTaskMs: 0 });
  try {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        probe.longTasks += 1;
        probe.longTaskMs += entry.duration;
      }
    }).observe({ type: "longtask", buffered: true });
  } catch (error) { probe.unsupported = String(error); }
})();
"""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url():
    """This process's database as a DATABASE_URL a child process can open."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "postgres", safe="")
    password = db.get("PASSWORD")
    auth = f"{user}:{quote(password, safe='')}" if password else user
    return (
        f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


def wait_for(condition, timeout, what, every=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Child:
    """A child process with its output in a temporary log file; stop() is SIGTERM."""

    def __init__(self, name, command, env=None):
        self.name = name
        self.command = command
        self.env = dict(os.environ, DATABASE_URL=database_url(), **(env or {}))
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"warren-{name}-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self):
        return self.process.pid

    def alive(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{self.output()}")
        return True

    def output(self):
        return Path(self.log.name).read_text(errors="replace")[-6000:]

    def stop(self, timeout=20.0):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def start_server(env=None, timeout=30.0):
    """Daphne serving console.asgi on a free loopback port; returns (child, base URL)."""
    port = free_port()
    child = Child(
        "daphne",
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "console.asgi:application",
        ],
        env,
    )
    base = f"http://127.0.0.1:{port}"

    def answers():
        child.alive()
        try:
            with urllib.request.urlopen(base + "/login/", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(answers, timeout, "the server to answer", every=0.2)
    except Exception:
        child.stop()
        raise
    return child, base


def start_tap(vhosts, env=None, args=(), timeout=30.0):
    """`manage.py tap` on `vhosts`, returned once every vhost is connected."""
    from tracer.models import TapSession

    command = [sys.executable, "manage.py", "tap"]
    for vhost in vhosts:
        command += ["--vhost", vhost]
    child = Child("tap", command + list(args), env)

    def connected():
        child.alive()
        session = TapSession.objects.filter(pid=child.pid).order_by("-id").first()
        return session is not None and all((session.connected or {}).get(v) for v in vhosts)

    try:
        wait_for(connected, timeout, "the tap to connect", every=0.1)
    except Exception:
        child.stop()
        raise
    return child


def session_cookie(user, base_url):
    """A logged-in session for `user`, as a Playwright cookie for `base_url`."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return {"name": name, "value": client.cookies[name].value, "url": base_url}


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


# --- the benchmark --------------------------------------------------------------------------


@dataclass
class BenchmarkResult:
    target_events_per_s: float
    seconds: float
    events_per_s: float  # what the tap actually received, per second
    rows_shown: int
    frames: int
    delay_p50_ms: float | None
    delay_p95_ms: float | None
    delay_max_ms: float | None
    busy_share: float  # main-thread task time / wall time (Chrome's own accounting)
    long_tasks: int
    long_task_ms: float
    sampled: bool
    page_rate_text: str
    parts_p50_ms: tuple  # (tap, publisher, channel layer and consumer, wire and page)
    parts_p95_ms: tuple
    tap_lag_ms: float
    busy_parts: tuple = ()  # shares of script, layout and style recalculation

    def lines(self):
        def figure(value):
            return "–" if value is None else f"{value:,.0f}"

        return [
            f"load: {self.events_per_s:,.0f} events/s through the tap for {self.seconds:.0f} s "
            f"(asked for {self.target_events_per_s:,.0f})",
            f"page: {self.rows_shown} rows in {self.frames} frames; sampled view: "
            f"{'yes' if self.sampled else 'no'}; status line: {self.page_rate_text!r}",
            f"event-to-screen delay: p50 {figure(self.delay_p50_ms)} ms, "
            f"p95 {figure(self.delay_p95_ms)} ms, max {figure(self.delay_max_ms)} ms "
            f"(goal p95 < 300 ms)",
            f"main thread busy: {self.busy_share:.1%} (goal < 50 %); "
            f"{self.long_tasks} long tasks, {self.long_task_ms:,.0f} ms in all; script "
            + ", layout ".join(f"{part:.1%}" for part in self.busy_parts[:2])
            + (f", style {self.busy_parts[2]:.1%}" if len(self.busy_parts) > 2 else ""),
            "delay p50 by stage (newest event of a frame): tap capture to commit "
            f"{figure(self.parts_p50_ms[0])} ms, publisher {figure(self.parts_p50_ms[1])} ms, "
            f"channel layer and consumer {figure(self.parts_p50_ms[2])} ms, "
            f"wire and page {figure(self.parts_p50_ms[3])} ms (p95: "
            + " / ".join(figure(part) for part in self.parts_p95_ms)
            + f" ms); tap lag at the end {self.tap_lag_ms:,.0f} ms",
        ]


def _percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def check_loopback():
    from rabbit.brokers import default_broker

    broker = default_broker()
    hosts = {
        urlsplit(broker.amqp_url_public).hostname,
        urlsplit(broker.management_url).hostname,
        urlsplit(settings.REDIS_URL).hostname,
    }
    if not hosts <= LOOPBACK:
        raise RuntimeError(
            "The benchmark runs on loopback only: broker, management API and Redis must be "
            f"on this machine (found {', '.join(sorted(h or '?' for h in hosts))})."
        )
    return broker


def _wait_live(page, timeout=15.0):
    """Until the socket is open and the tap's heartbeat came (polled: the CSP forbids eval)."""
    deadline = time.monotonic() + timeout
    script = "() => document.getElementById('live-state').dataset.state === 'live'"
    while not page.evaluate(script):
        if time.monotonic() > deadline:
            raise TimeoutError("the Live flows page did not go live")
        time.sleep(0.1)


BUSY_PARTS = ("ScriptDuration", "LayoutDuration", "RecalcStyleDuration")


def _task_seconds(cdp):
    """Chrome's cumulative main-thread times: all tasks, and script, layout, style."""
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    values = {item["name"]: item["value"] for item in metrics}
    return values["TaskDuration"], tuple(values.get(name, 0.0) for name in BUSY_PARTS)


def run_live_benchmark(events_per_s=2000, seconds=30.0, report=print):
    """Drive `events_per_s` through the tap for `seconds` with Live flows open; measure."""
    from django.contrib.auth.models import Group, User
    from playwright.sync_api import sync_playwright

    from tracer.models import TapSession
    from workloads.runner import WORKLOADS

    broker = check_loopback()
    # Playwright's sync API runs an event loop in this thread; the ORM calls made
    # here meanwhile are plain synchronous ones, safe in this command's process.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    mgmt = broker.client()
    vhost = f"warren-bench-{secrets.token_hex(4)}"
    user = User.objects.create_user(f"warren-bench-{secrets.token_hex(4)}")
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    mgmt.create_vhost(vhost, description="Warren live benchmark (temporary)")
    children = []
    stop_load = threading.Event()
    load = []
    try:
        report(f"scratch vhost {vhost}; starting the server and the tap…")
        server, base = start_server()
        children.append(server)
        tap = start_tap([vhost])
        children.append(tap)
        with sync_playwright() as playwright:
            chromium = launch_chromium(playwright)
            context = chromium.new_context(viewport={"width": 1440, "height": 900})
            context.add_cookies([session_cookie(user, base)])
            context.add_init_script(PAGE_PROBE)
            page = context.new_page()
            page.goto(f"{base}/live/?vhost={quote(vhost, safe='')}")
            _wait_live(page)
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")

            # More clients (LOAD_CLIENTS) share the rate when one alone cannot keep it.
            calls_per_s = events_per_s / EVENTS_PER_CALL / LOAD_CLIENTS
            load = [
                threading.Thread(
                    target=WORKLOADS["fibonacci"].run_forever,
                    args=(broker.amqp_url(), vhost, calls_per_s, stop_load),
                    kwargs={"servers": 2, "work_ms_per_n": 0.0},
                    name=f"bench load {index}",
                    daemon=True,
                )
                for index in range(LOAD_CLIENTS)
            ]
            for thread in load:
                thread.start()
            time.sleep(2.0)  # the workload connects and reaches its rate
            report(f"measuring for {seconds:.0f} s at {events_per_s:,.0f} events/s asked…")
            page.evaluate(
                "window.WarrenLive.delays = []; window.WarrenLive.rowsShown = 0;"
                "window.WarrenLive.frames = 0;"
                "window.__warrenProbe.longTasks = 0; window.__warrenProbe.longTaskMs = 0;"
            )
            received_before = TapSession.objects.get(pid=tap.pid).received
            task_before, wall_before = _task_seconds(cdp), time.monotonic()
            time.sleep(seconds)
            task_after, wall_after = _task_seconds(cdp), time.monotonic()
            session = TapSession.objects.get(pid=tap.pid)
            received_after = session.received
            measured = page.evaluate(
                "({delays: window.WarrenLive.delays, parts: window.WarrenLive.parts,"
                " rows: window.WarrenLive.rowsShown,"
                " frames: window.WarrenLive.frames, probe: window.__warrenProbe,"
                " sampled: !document.getElementById('live-sampled').hidden,"
                " rates: document.getElementById('live-rates').textContent})"
            )
            context.close()
            chromium.close()
        elapsed = wall_after - wall_before
        delays = measured["delays"]
        return BenchmarkResult(
            target_events_per_s=events_per_s,
            seconds=elapsed,
            events_per_s=(received_after - received_before) / elapsed,
            rows_shown=measured["rows"],
            frames=measured["frames"],
            delay_p50_ms=_percentile(delays, 50),
            delay_p95_ms=_percentile(delays, 95),
            delay_max_ms=max(delays) if delays else None,
            busy_share=(task_after[0] - task_before[0]) / elapsed,
            busy_parts=tuple(
                (after - before) / elapsed
                for before, after in zip(task_before[1], task_after[1], strict=True)
            ),
            long_tasks=measured["probe"]["longTasks"],
            long_task_ms=measured["probe"]["longTaskMs"],
            sampled=measured["sampled"],
            page_rate_text=measured["rates"],
            parts_p50_ms=tuple(
                _percentile([part[index] for part in measured["parts"]], 50) for index in range(4)
            ),
            parts_p95_ms=tuple(
                _percentile([part[index] for part in measured["parts"]], 95) for index in range(4)
            ),
            tap_lag_ms=session.lag_ms,
        )
    finally:
        stop_load.set()
        for thread in load:
            thread.join(10)
        for child in reversed(children):
            child.stop()
        try:
            mgmt.delete_vhost(vhost)
        finally:
            user.delete()
            _forget_vhost(vhost)


def _forget_vhost(vhost):
    """The scratch vhost's captured events and statistics: nobody will look at them."""
    from tracer.models import Flow, LatencyBucket, Message, ReplyQueue, ServiceMinute

    for model in (Message, Flow, ServiceMinute, LatencyBucket, ReplyQueue):
        model.objects.filter(vhost=vhost).delete()
