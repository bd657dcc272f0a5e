"""A real Celery worker in a subprocess, on a queue of its own, against the test database."""

import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from django.conf import settings

from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).with_name("celery")


def database_url():
    """The test database as a DATABASE_URL the worker's settings can read."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


class Worker:
    """`with Worker() as worker:` starts it and waits until it is ready; leaving kills it."""

    def __init__(self):
        self.queue = f"warren-replay-test-{uuid.uuid4().hex[:10]}"
        self.process = None
        self.log = None

    def start(self, timeout_s=30.0):
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DJANGO_SETTINGS_MODULE": "console.settings",
        }
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the worker
            prefix="replay-worker-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            [
                str(CELERY),
                "-A",
                "console",
                "worker",
                "--pool",
                "solo",
                "--concurrency",
                "1",
                "-Q",
                self.queue,
                "-n",
                f"{self.queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "info",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited:\n{self.output()}")
            return " ready." in self.output()

        try:
            wait_until(ready, timeout=timeout_s, interval=0.1, what="the Celery worker to be ready")
        except AssertionError as error:
            output = self.output()
            self.stop()
            raise RuntimeError(f"{error}:\n{output}") from None
        return self

    def output(self):
        return Path(self.log.name).read_text(errors="replace") if self.log else ""

    def kill(self):
        """SIGKILL, as when a machine dies: no cleanup in the worker."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self):
        self.kill()
        if self.log:
            self.log.close()
            Path(self.log.name).unlink(missing_ok=True)
            self.log = None
        forget_queue(self.queue)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def forget_queue(queue):
    """Deletes the test queue's Redis list, and any task a killed worker left unacknowledged."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.delete(queue)
        for tag, payload in client.hscan_iter("unacked"):
            if queue.encode() in payload:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    finally:
        client.close()
