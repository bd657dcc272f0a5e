"""Seed workload 3: the Fibonacci RPC over direct reply-to (`amq.rabbitmq.reply-to`).

No callback queue at all: the client consumes the pseudo-queue in no-ack mode
on its channel before publishing, and the broker rewrites each request's
reply_to to `amq.rabbitmq.reply-to.<token>` (the server echoes what it saw in
its reply). The reply's delivery is not traced by the firehose (docs/architecture.md).
"""

from workloads.engine import Plan, run_forever_plan
from workloads.fibonacci_rpc import FibonacciClient, FibonacciServer, declare_queue

QUEUE = "rpc_queue_direct"
REPLY_TO = "amq.rabbitmq.reply-to"


def plan(context, ledger, calls=None, rate=None, servers=1, work_ms_per_n=0.5, seed=None):
    return Plan(
        name="direct_reply_to",
        declare=declare_queue(QUEUE),
        servers=[
            FibonacciServer(
                context, f"direct reply-to server {i}", queue=QUEUE, work_ms_per_n=work_ms_per_n
            )
            for i in range(1, servers + 1)
        ],
        clients=[
            FibonacciClient(
                context,
                "direct reply-to client",
                ledger,
                queue=QUEUE,
                direct_reply_to=True,
                calls=calls,
                rate=rate,
                seed=seed,
            )
        ],
        queues=[QUEUE],
    )


def run_forever(amqp_url, vhost, rate, stop_event, **options):
    run_forever_plan(plan, amqp_url, vhost, rate, stop_event, **options)
