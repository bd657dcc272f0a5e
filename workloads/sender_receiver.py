"""Seed workload 6: a sender and two competing receivers on one queue.

The sender publishes shipping notices with a full properties dictionary (type,
content_type, content_encoding, message_id, correlation_id, timestamp, app_id,
delivery_mode, headers); two receivers consume the same queue with prefetch 1,
so the broker deals the messages out between them. A receiver's "reply" in the
ledger is its receipt: which receiver got the message and the properties it saw.
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

QUEUE = "shipping_notices"
MESSAGE_TYPE = "shipment.dispatched"
CARRIERS = ("Parcelwise", "Northline Freight", "QuickPost")
CITIES = ("Columbus", "Richmond", "Toledo", "Norfolk", "Dayton")


class Receiver(Actor):
    prefetch = 1

    def __init__(self, context, label, ledger, work_ms=5.0):
        super().__init__(context, label)
        self.ledger = ledger
        self.work_ms = work_ms

    def setup(self):
        self.serve(QUEUE, self.on_message)

    def on_message(self, channel, method, properties, body):
        time.sleep(self.work_ms / 1000.0)  # "handling" the notice
        receipt = {
            "receiver": self.label,
            "redelivered": method.redelivered,
            "type": properties.type,
            "content_type": properties.content_type,
            "content_encoding": properties.content_encoding,
            "message_id": properties.message_id,
            "correlation_id": properties.correlation_id,
            "app_id": properties.app_id,
            "timestamp": properties.timestamp,
            "delivery_mode": properties.delivery_mode,
            "headers": properties.headers or {},
            "body": json.loads(body),
        }
        self.ledger.replied(properties.message_id, dump(receipt), thread=self.label)
        channel.basic_ack(delivery_tag=method.delivery_tag)


class Sender(Client):
    def __init__(self, context, label, ledger, **kw):
        super().__init__(context, label, ledger, **kw)
        self.random = random.Random()

    def call(self, index):
        r = self.random
        message_id = new_id()
        correlation_id = f"shipment-{new_id()[:12]}"
        body = dump(
            {
                "shipment": correlation_id,
                "sequence": index,
                "carrier": r.choice(CARRIERS),
                "destination": r.choice(CITIES),
                "parcels": r.randint(1, 6),
                "dispatched_at": now_iso(),
            }
        )
        record = CallRecord(
            correlation_id=correlation_id,
            reply_to=None,
            service=service_name("", QUEUE),
            request_body=body,
        )
        self.ledger.sent(message_id, record)
        self.channel.basic_publish(
            exchange="",
            routing_key=QUEUE,
            properties=amqp.properties(
                type=MESSAGE_TYPE,
                content_type="application/json",
                content_encoding="utf-8",
                message_id=message_id,
                correlation_id=correlation_id,
                timestamp=int(time.time()),
                app_id="warren-demo",
                delivery_mode=2,
                headers={"source": self.connection_name, "sequence": index, "priority": "normal"},
            ),
            body=body,
        )


def declare(channel):
    channel.queue_declare(queue=QUEUE, durable=True)


def plan(context, ledger, calls=None, rate=None, receivers=2, work_ms=5.0):
    return Plan(
        name="sender_receiver",
        declare=declare,
        servers=[
            Receiver(context, f"receiver {i}", ledger, work_ms=work_ms)
            for i in range(1, receivers + 1)
        ],
        clients=[Sender(context, "sender", ledger, calls=calls, rate=rate)],
        queues=[QUEUE],
    )


def run_forever(amqp_url, vhost, rate, stop_event, **options):
    run_forever_plan(plan, amqp_url, vhost, rate, stop_event, **options)
