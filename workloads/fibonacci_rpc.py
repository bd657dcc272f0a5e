"""Seed workload 1: Fibonacci RPC, as in the classic RabbitMQ RPC tutorial.

The server consumes `rpc_queue` with prefetch 1 and replies to each request's
reply_to with its correlation id; the client owns one exclusive, server-named
callback queue and matches replies by correlation id.
"""

import json
import random
import time

from rabbit import amqp
from workloads.engine import (
    Actor,
    Client,
    Plan,
    dump,
    new_id,
    now_iso,
    run_forever_plan,
    service_name,
)
from workloads.ledger import CallRecord

QUEUE = "rpc_queue"


def fibonacci(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


class FibonacciServer(Actor):
    prefetch = 1

    def __init__(self, context, label, queue=QUEUE, work_ms_per_n=0.5):
        super().__init__(context, label)
        self.queue = queue
        self.work_ms_per_n = work_ms_per_n

    def setup(self):
        self.serve(self.queue, self.on_request)

    def on_request(self, channel, method, properties, body):
        started = time.perf_counter()
        request = json.loads(body)
        n = int(request["n"])
        value = fibonacci(n)
        # A little work that grows with n, so the latency page has a shape to show.
        time.sleep(self.work_ms_per_n * n / 1000.0)
        self.reply(
            properties,
            dump(
                {
                    "n": n,
                    "fibonacci": value,
                    "server": self.connection_name,
                    "reply_to": properties.reply_to,
                    "computed_in_ms": round((time.perf_counter() - started) * 1000.0, 3),
                }
            ),
        )
        channel.basic_ack(delivery_tag=method.delivery_tag)


class FibonacciClient(Client):
    """Pipelined calls over one exclusive callback queue (or direct reply-to)."""

    def __init__(self, context, label, ledger, queue=QUEUE, direct_reply_to=False, seed=None, **kw):
        super().__init__(context, label, ledger, **kw)
        self.queue = queue
        self.direct_reply_to = direct_reply_to
        self.random = random.Random(seed)
        self.callback_queue = None

    def setup(self):
        if self.direct_reply_to:
            # The pseudo-queue must be consumed (no-ack) on this channel before publishing.
            self.callback_queue = "amq.rabbitmq.reply-to"
            self.channel.basic_consume(
                queue=self.callback_queue, on_message_callback=self.on_reply, auto_ack=True
            )
        else:
            declared = self.channel.queue_declare(queue="", exclusive=True)
            self.callback_queue = declared.method.queue
            self.channel.basic_consume(
                queue=self.callback_queue, on_message_callback=self.on_reply, auto_ack=True
            )

    def on_reply(self, channel, method, properties, body):
        self.ledger.replied(properties.correlation_id, body, thread=self.label)

    def call(self, index):
        correlation_id = new_id()
        body = dump(
            {
                "n": self.random.randint(0, 35),
                "request": index,
                "client": self.connection_name,
                "requested_at": now_iso(),
            }
        )
        record = CallRecord(
            correlation_id=correlation_id,
            reply_to=self.callback_queue,
            service=service_name("", self.queue),
            request_body=body,
        )
        self.ledger.sent(correlation_id, record)
        self.channel.basic_publish(
            exchange="",
            routing_key=self.queue,
            properties=self.request_properties(correlation_id),
            body=body,
        )

    def request_properties(self, correlation_id):
        return amqp.properties(
            correlation_id=correlation_id,
            reply_to=self.callback_queue,
            content_type="application/json",
        )


def declare_queue(queue):
    def declare(channel):
        channel.queue_declare(queue=queue)

    return declare


def plan(context, ledger, calls=None, rate=None, servers=1, work_ms_per_n=0.5, seed=None):
    return Plan(
        name="fibonacci",
        declare=declare_queue(QUEUE),
        servers=[
            FibonacciServer(context, f"fibonacci server {i}", work_ms_per_n=work_ms_per_n)
            for i in range(1, servers + 1)
        ],
        clients=[
            FibonacciClient(context, "fibonacci client", ledger, calls=calls, rate=rate, seed=seed)
        ],
        queues=[QUEUE],
    )


def run_forever(amqp_url, vhost, rate, stop_event, **options):
    run_forever_plan(plan, amqp_url, vhost, rate, stop_event, **options)
