"""Celery's client side: a real worker in a subprocess (bounded, killed at the end),
two task names called one after the other, each result awaited through the rpc://
backend (the client's reply queue, correlation id = task id)."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from celery.exceptions import TimeoutError as NoResultInTime

from tests.clients.calls import APART_S, ClientCall, SocketTimes, vhost_url
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).with_name("celery")


class Worker:
    def __init__(self, url: str) -> None:
        self.url = url
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the worker
            prefix="interop-celery-", suffix=".log", delete=False
        )

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def __enter__(self) -> "Worker":
        env = {**os.environ, "INTEROP_BROKER_URL": self.url}
        self.process = subprocess.Popen(
            [str(CELERY), "-A", "tests.clients.celery_tasks", "worker", "--pool", "solo",
             "--concurrency", "1", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-l", "info", "-n", "interop@%h"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited:\n{self.output()}")
            return " ready." in self.output()

        try:
            wait_until(ready, timeout=30, interval=0.1, what="the Celery worker to be ready")
        except AssertionError:
            output = self.output()
            self.__exit__()
            raise RuntimeError(f"the Celery worker never got ready:\n{output}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def run(base_url: str, vhost: str, calls: int) -> list[ClientCall]:
    url = vhost_url(base_url, vhost)
    os.environ["INTEROP_BROKER_URL"] = url
    from tests.clients import celery_tasks

    celery_tasks.app.conf.broker_url = url
    done = []
    # The client's stopwatch around the wire, at its sockets (SocketTimes): from
    # the request's publish written to the reply's first bytes read. From Celery's
    # before_task_publish signal to its on_message callback, kombu's and Celery's
    # own time came to 1.1-1.5 ms of the 2 ms the comparison allows, on a slow day.
    wire = SocketTimes()
    with wire.every_new_connection(), Worker(url) as worker:
        # Two calls first, not compared: the first opens the client's connections and
        # reply queue; a second task sent within ~0.3 s of the worker saying "ready"
        # sat in the worker 10 s (its event loop's longest sleep) every time here, a
        # start-up race of the worker's (Celery 5.7, solo pool). A short pause makes
        # it rare; the second warm-up call absorbs it when it still happens.
        time.sleep(1.0)
        for warm_up in (1, 2):
            first = celery_tasks.add.delay(warm_up, 1)
            assert first.get(timeout=30) == warm_up + 1
            done.append(ClientCall(first.id, celery_tasks.add.name, 0.0, warm_up=True))
        for index in range(calls):
            task = (celery_tasks.add, celery_tasks.multiply)[index % 2]
            result = task.delay(index, 3)
            try:
                answer = result.get(timeout=10)
            except NoResultInTime as error:
                raise AssertionError(
                    f"call {index} ({task.name}, task id {result.id}) had no result "
                    f"after 10 s; the worker said:\n{worker.output()[-4000:]}"
                ) from error
            client_ms = wire.round_trip_s * 1000
            assert answer == (index + 3 if task is celery_tasks.add else index * 3)
            done.append(ClientCall(result.id, task.name, client_ms))
            time.sleep(APART_S)
    celery_tasks.app.close()
    return done
