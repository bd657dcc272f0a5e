"""Running the real tap against the test database, for integration tests.

The tap runs as `manage.py tap` in a subprocess (so it can be killed) on the
test database: tests using it need `@pytest.mark.django_db(transaction=True)`
so that both sides see committed rows.
"""

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from django.db import connection

from rabbit import amqp
from rabbit.brokers import default_broker
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]


def database_url():
    """The test database as a DATABASE_URL a subprocess can open."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = quote(settings.get("USER") or "postgres", safe="")
    password = settings.get("PASSWORD")
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{settings['NAME']}"


class TapProcess:
    """`manage.py tap --vhost V` on the test database; stop() is SIGTERM."""

    def __init__(self, *vhosts, env=None, args=()):
        self.vhosts = vhosts
        self.env = dict(os.environ, DATABASE_URL=database_url(), **(env or {}))
        for name in [name for name, value in self.env.items() if value is None]:
            del self.env[name]  # None: unset, so the tap takes the setting's default
        self.args = list(args)
        self.process = None
        self.log = None
        self.last_output = ""

    def start(self, wait=True):
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in __exit__
            prefix="warren-tap-", suffix=".log", delete=False
        )
        command = [sys.executable, "manage.py", "tap"]
        for vhost in self.vhosts:
            command += ["--vhost", vhost]
        self.process = subprocess.Popen(
            command + self.args, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        if wait:
            try:
                self.wait_connected()
            except BaseException:
                self.stop()  # no tap outlives the test that could not use it
                raise
        return self

    def wait_connected(self, timeout=45.0):
        from tracer.models import TapSession

        def connected():
            self._check_alive()
            session = TapSession.objects.filter(pid=self.process.pid).first()
            return session and all((session.connected or {}).get(v) for v in self.vhosts)

        try:
            wait_until(connected, timeout, what="the tap to connect")
        except AssertionError as error:
            raise AssertionError(f"{error}\nthe tap's log:\n{self.output()}") from None

    def session(self):
        from tracer.models import TapSession

        return TapSession.objects.filter(pid=self.process.pid).order_by("-id").first()

    def _check_alive(self):
        if self.process.poll() is not None:
            raise AssertionError(f"the tap exited ({self.process.returncode}):\n{self.output()}")

    def output(self):
        return Path(self.log.name).read_text(errors="replace")[-6000:] if self.log else ""

    def stop(self, timeout=30.0):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                stacks = _stacks(self.process.pid)
                self.process.kill()
                self.process.wait(5)
                output = self.output()
                self._forget_log()
                raise AssertionError(
                    f"the tap did not stop on SIGTERM:\n{output}\nwhere it was:\n{stacks}"
                ) from None
        self.last_output = self.output()  # what it logged, for a failing assertion to show
        self._forget_log()
        return self.process.returncode if self.process else None

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._forget_log()

    def _forget_log(self):
        if self.log is not None:
            self.log.close()
            Path(self.log.name).unlink(missing_ok=True)
            self.log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _stacks(pid):
    """Every thread's stack of a hung process (py-spy), to say where it hangs."""
    spy = Path(sys.executable).with_name("py-spy")
    try:
        done = subprocess.run(
            [str(spy), "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"(no stacks: {error})"
    return (done.stdout + done.stderr)[-8000:]


def child_pids(pid, module):
    """The tap's helper processes running `module` (tracer.tap.capture, tracer.tap.feed)."""
    found = subprocess.run(
        ["pgrep", "-P", str(pid), "-f", module], capture_output=True, text=True, check=False
    )
    return [int(line) for line in found.stdout.split()]


def client(vhost, name="warren-test-client"):
    return amqp.blocking_connection(default_broker().amqp_url(), vhost=vhost, name=name)


def tracing_on(mgmt, vhost):
    return bool(mgmt.vhost(vhost).get("tracing"))
