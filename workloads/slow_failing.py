"""Seed workload 7: a slow and failing RPC service (an inventory lookup on `slow_rpc`).

Each request says how it should go wrong (`"simulate"` in its JSON), so a test
knows what to expect:

- `ok`: answered after a short, varying service time;
- `late`: accepted at once, answered after `late_delay_s` (by default beyond
  WARREN_RPC_TIMEOUT, so Warren first calls it a timeout, then a late reply);
- `never`: accepted and dropped; no reply ever (a timeout);
- `crash`: the server that gets it first crashes mid-request: it closes its
  connection without acking, so the broker redelivers the request (marked
  redelivered) to another server, which answers it; the crashed server comes
  back after `restart_delay_s`.

Servers use prefetch 1 and acknowledge late requests at once (the reply comes
from a timer), so a crash only ever takes its own request down with it.
"""

import json
import random

from rabbit import amqp
from workloads.engine import (
    Actor,
    Client,
    Plan,
    Restart,
    dump,
    new_id,
    now_iso,
    run_forever_plan,
    service_name,
)
from workloads.ledger import CallRecord

QUEUE = "slow_rpc"
OK, LATE, NEVER, CRASH = "ok", "late", "never", "crash"
# The demo's endless pattern: one of each misbehaviour every 20 calls.
CYCLE = [OK] * 20
CYCLE[3], CYCLE[8], CYCLE[13] = CRASH, LATE, NEVER
WAREHOUSES = ("north", "south", "east")


def default_late_delay_s():
    """Beyond Warren's RPC timeout, so a late reply really is late."""
    try:
        from django.conf import settings

        return float(settings.WARREN_RPC_TIMEOUT) + 2.0
    except Exception:  # noqa: BLE001 - outside Django: the documented default timeout
        return 32.0


def bounded_behaviours(calls, late=1, never=1, crash=1):
    """What each of `calls` requests will simulate: the misbehaving ones spread out.

    Crashes come first, so no late reply is waiting on a timer in a server
    that crashes (it would be lost with the server, and the counts would vary).
    """
    plan = [OK] * calls
    specials = [CRASH] * crash
    for i in range(max(late, never)):
        specials += [LATE] if i < late else []
        specials += [NEVER] if i < never else []
    if len(specials) > calls:
        raise ValueError(f"{len(specials)} misbehaving requests do not fit in {calls} calls")
    for j, behaviour in enumerate(specials):
        plan[(j + 1) * calls // (len(specials) + 1)] = behaviour
    return plan


class SlowFailingServer(Actor):
    prefetch = 1

    def __init__(self, context, label, late_delay_s, restart_delay_s=1.0):
        super().__init__(context, label)
        self.late_delay_s = late_delay_s
        self.restart_delay_s = restart_delay_s
        self.crashing = False
        self.random = random.Random()

    def restart_delay(self):
        return self.restart_delay_s

    def setup(self):
        self.crashing = False
        self.serve(QUEUE, self.on_request)

    def after_pump(self):
        if self.crashing:
            # The session closes the connection with the request unacked: the broker requeues it.
            raise Restart("crashed mid-request, leaving it unacknowledged")

    def on_request(self, channel, method, properties, body):
        request = json.loads(body)
        behaviour = request.get("simulate", OK)
        tag, redelivered = method.delivery_tag, method.redelivered
        if behaviour == CRASH and not redelivered:
            self.crashing = True
            return
        if behaviour == NEVER:
            channel.basic_ack(delivery_tag=tag)
            return
        if behaviour == LATE:
            channel.basic_ack(delivery_tag=tag)
            self.connection.call_later(
                self.late_delay_s,
                lambda: self.answer(properties, request, redelivered, self.late_delay_s),
            )
            return
        delay = self.random.uniform(0.01, 0.06)

        def answer_and_ack():
            self.answer(properties, request, redelivered, delay)
            channel.basic_ack(delivery_tag=tag)

        self.connection.call_later(delay, answer_and_ack)

    def answer(self, properties, request, redelivered, delay):
        self.reply(
            properties,
            dump(
                {
                    "request": request.get("request"),
                    "sku": request.get("sku"),
                    "simulate": request.get("simulate"),
                    "in_stock": self.random.randint(0, 400),
                    "warehouse": self.random.choice(WAREHOUSES),
                    "server": self.connection_name,
                    "redelivered": redelivered,
                    "delayed_s": round(delay, 3),
                    "answered_at": now_iso(),
                }
            ),
        )


class SlowFailingClient(Client):
    def __init__(self, context, label, ledger, behaviours=None, **kw):
        super().__init__(context, label, ledger, **kw)
        self.behaviours = behaviours
        self.callback_queue = None
        self.random = random.Random()

    def setup(self):
        declared = self.channel.queue_declare(queue="", exclusive=True)
        self.callback_queue = declared.method.queue
        self.channel.basic_consume(
            queue=self.callback_queue, on_message_callback=self.on_reply, auto_ack=True
        )

    def on_reply(self, channel, method, properties, body):
        self.ledger.replied(properties.correlation_id, body, thread=self.label)

    def call(self, index):
        if self.behaviours is not None:
            behaviour = self.behaviours[index]
        else:
            behaviour = CYCLE[index % len(CYCLE)]
        correlation_id = new_id()
        body = dump(
            {
                "request": index,
                "sku": f"SKU-{self.random.randint(1000, 9999)}",
                "simulate": behaviour,
                "asked_at": now_iso(),
            }
        )
        record = CallRecord(
            correlation_id=correlation_id,
            reply_to=self.callback_queue,
            service=service_name("", QUEUE),
            request_body=body,
        )
        self.ledger.sent(correlation_id, record, expected=0 if behaviour == NEVER else 1)
        self.channel.basic_publish(
            exchange="",
            routing_key=QUEUE,
            properties=amqp.properties(
                correlation_id=correlation_id,
                reply_to=self.callback_queue,
                content_type="application/json",
            ),
            body=body,
        )


def declare(channel):
    channel.queue_declare(queue=QUEUE)


def plan(
    context,
    ledger,
    calls=None,
    rate=None,
    servers=2,
    late=1,
    never=1,
    crash=1,
    late_delay_s=None,
    restart_delay_s=1.0,
):
    late_delay_s = default_late_delay_s() if late_delay_s is None else late_delay_s
    behaviours = None if calls is None else bounded_behaviours(calls, late, never, crash)
    return Plan(
        name="slow_failing",
        declare=declare,
        servers=[
            SlowFailingServer(context, f"slow service server {i}", late_delay_s, restart_delay_s)
            for i in range(1, servers + 1)
        ],
        clients=[
            SlowFailingClient(
                context,
                "slow service client",
                ledger,
                behaviours=behaviours,
                calls=calls,
                rate=rate,
            )
        ],
        queues=[QUEUE],
    )


def run_forever(amqp_url, vhost, rate, stop_event, **options):
    run_forever_plan(plan, amqp_url, vhost, rate, stop_event, **options)
