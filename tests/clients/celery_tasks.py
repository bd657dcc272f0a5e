"""A Celery 5 application with the rpc:// result backend and two tasks, for a real
worker started by the interop test (broker URL from INTEROP_BROKER_URL). Task
messages use protocol 2: the task's name travels in the `task` header."""

import os

from celery import Celery

app = Celery(
    "interop",
    broker=os.environ.get("INTEROP_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    backend="rpc://",
)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_protocol=2,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    result_expires=None,
)


@app.task(name="interop.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="interop.multiply")
def multiply(x: int, y: int) -> int:
    return x * y
