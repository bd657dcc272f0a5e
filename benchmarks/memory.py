"""Memory: peak RSS of the tap under RPC load, and of Daphne with 20 live subscribers.

One run: a scratch vhost and database, the tap attached, Daphne serving the
console on a free loopback port, 20 WebSocket clients on /ws/flows/ logged in
with a session cookie (a user made for the run in the scratch database), and
RPC load for `--memory-seconds`. Both processes (with their children) are
sampled four times a second; the frames the subscribers received are counted,
so the figure is Daphne at work, not idle.
"""

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from django.conf import settings

from benchmarks import common
from benchmarks.keepup import TappedRun
from benchmarks.load import RpcLoad

GOAL_TAP_MB = 150
GOAL_DAPHNE_MB = 300
SUBSCRIBERS = 20

MAKE_SESSION = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
import secrets
User = get_user_model()
user = User.objects.create_superuser("warren-bench", "", secrets.token_urlsafe(24))
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def add_arguments(parser):
    parser.add_argument("--memory-seconds", type=float, default=30.0)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _session_key(url):
    env = dict(os.environ, DATABASE_URL=url)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", MAKE_SESSION],
        cwd=common.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip().splitlines()[-1]


class Daphne:
    def __init__(self, url):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DATABASE_URL=url, REDIS_URL=common.bench_redis_url())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "console.asgi:application",
            ],
            cwd=common.ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait(self, timeout=30.0):
        def answers():
            try:
                with urllib.request.urlopen(self.base + "/login/", timeout=2) as response:  # noqa: S310
                    return response.status == 200
            except OSError:
                return False

        if not common.wait_until(answers, timeout, every=0.2):
            raise common.BenchError("Daphne did not answer within 30 s")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class Subscribers:
    """SUBSCRIBERS WebSocket clients on /ws/flows/, counting frames, on one asyncio thread."""

    def __init__(self, base, session_key):
        self.url = base.replace("http://", "ws://") + "/ws/flows/"
        self.origin = base
        self.cookie = f"{settings.SESSION_COOKIE_NAME}={session_key}"
        self.frames = 0
        self.connected = 0
        self.errors = []
        self._stop = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        self._loop.run_until_complete(self._main())

    async def _main(self):
        self._stop = asyncio.Event()
        await asyncio.gather(*(self._one() for _ in range(SUBSCRIBERS)))

    async def _one(self):
        import websockets

        try:
            async with websockets.connect(
                self.url,
                origin=self.origin,
                additional_headers={"Cookie": self.cookie},
                open_timeout=20,
                max_size=None,
            ) as socket_:
                self.connected += 1
                while not self._stop.is_set():
                    try:
                        await asyncio.wait_for(socket_.recv(), timeout=0.5)
                        self.frames += 1
                    except TimeoutError:
                        continue
        except Exception as error:  # noqa: BLE001 - counted, shown in the report
            self.errors.append(f"{type(error).__name__}: {error}")

    def stop(self):
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def run(options, out):
    seconds = options.get("memory_seconds") or 30.0
    report = common.Report("memory")
    with TappedRun(out, options.get("database_url")) as run_:
        daphne = Daphne(run_.url)
        subscribers = None
        try:
            daphne.wait()
            subscribers = Subscribers(daphne.base, _session_key(run_.url)).start()
            common.wait_until(lambda: subscribers.connected >= SUBSCRIBERS, 20)
            out(f"memory: {subscribers.connected} subscribers; {seconds:.0f} s of RPC load")
            daphne_rss = []
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    daphne_rss.append(common.rss_mb(daphne.process.pid))
                    stop.wait(0.25)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            run_.sample()
            load = RpcLoad(run_.config.amqp_url(), run_.vhost, servers=2, clients=4, in_flight=10)
            load.run(seconds)
            run_.drain()
            time.sleep(1.0)
            run_.stop_sampling()
            stop.set()
            sampler.join(5)
        finally:
            if subscribers is not None:
                subscribers.stop()
            daphne.stop()
    tap_peak = max(run_.rss or [0])
    daphne_peak = max(daphne_rss or [0])
    report.add(
        "tap peak RSS (with its feeder)",
        f"< {GOAL_TAP_MB} MB",
        f"{tap_peak:.0f} MB",
        ok=tap_peak < GOAL_TAP_MB,
    )
    report.add(
        f"Daphne peak RSS, {SUBSCRIBERS} live subscribers",
        f"< {GOAL_DAPHNE_MB} MB",
        f"{daphne_peak:.0f} MB",
        ok=daphne_peak < GOAL_DAPHNE_MB,
    )
    report.add(
        "subscribers connected / frames received",
        f"{SUBSCRIBERS} / > 0",
        f"{subscribers.connected} / {subscribers.frames:,}",
        ok=subscribers.connected == SUBSCRIBERS and subscribers.frames > 0,
    )
    report.note(f"load: {load.calls / load.elapsed_s:,.0f} calls/s for {seconds:.0f} s")
    if subscribers.errors:
        report.note("subscriber errors: " + "; ".join(sorted(set(subscribers.errors))[:3]))
    return report
