"""Seed workload 5: pipes and filters, an order pipeline across a chain of queues.

    pipeline.validate -> pipeline.enrich -> pipeline.price -> pipeline.archive
                 \\___________________________/
                         pipeline.failures

Each filter consumes one queue and publishes to the next; an order that a
filter rejects goes to the one failure queue as a report instead. Every hop
keeps the order's correlation id and passes a W3C `traceparent` header on (same
trace id, a new span id whose parent is the previous hop), so Warren can draw
the whole conversation. The archiver at the end and the failure monitor are the
"far ends" the ledger records.
"""

import json
import random
import secrets

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

VALIDATE = "pipeline.validate"
ENRICH = "pipeline.enrich"
PRICE = "pipeline.price"
ARCHIVE = "pipeline.archive"
FAILURES = "pipeline.failures"
QUEUES = [VALIDATE, ENRICH, PRICE, ARCHIVE, FAILURES]

PRICES_CENTS = {"SKU-1001": 1250, "SKU-1002": 899, "SKU-2040": 15999, "SKU-3300": 45}
UNKNOWN_SKU = "SKU-9999"
CUSTOMERS = {"c-17": "gold", "c-23": "silver", "c-42": "bronze"}


def traceparent(trace_id=None):
    """A W3C traceparent for a new span (in the given trace, or a new one)."""
    return f"00-{trace_id or secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def trace_id_of(header):
    parts = (header or "").split("-")
    return parts[1] if len(parts) == 4 else None


class FilterRejected(Exception):  # noqa: N818 - a verdict, not a fault
    """The order cannot go on; the reason goes to the failure queue."""


class Filter(Actor):
    """Consume `source`, transform, publish to `target` (or a failure report)."""

    prefetch = 5
    source: str | None = None
    target: str | None = None
    step: str | None = None

    def setup(self):
        self.serve(self.source, self.on_message)

    def transform(self, order):
        raise NotImplementedError

    def on_message(self, channel, method, properties, body):
        order = json.loads(body)
        headers = dict(properties.headers or {})
        headers["traceparent"] = traceparent(trace_id_of(headers.get("traceparent")))
        headers["x-pipeline-step"] = self.step
        try:
            order = self.transform(order)
            # The audit trail in the body names each hop's span, for a reader without Warren.
            order.setdefault("history", []).append(
                {"step": self.step, "at": now_iso(), "traceparent": headers["traceparent"]}
            )
            target, payload = self.target, order
        except FilterRejected as rejected:
            target = FAILURES
            payload = {
                "order_id": order.get("order_id"),
                "failed_at": self.step,
                "reason": str(rejected),
                "traceparent": headers["traceparent"],
                "order": order,
                "reported_at": now_iso(),
            }
        channel.basic_publish(
            exchange="",
            routing_key=target,
            properties=amqp.properties(
                correlation_id=properties.correlation_id,
                message_id=new_id(),
                content_type="application/json",
                delivery_mode=2,
                headers=headers,
            ),
            body=dump(payload),
        )
        channel.basic_ack(delivery_tag=method.delivery_tag)


class Validator(Filter):
    source, target, step = VALIDATE, ENRICH, "validate"

    def transform(self, order):
        if not isinstance(order.get("quantity"), int) or order["quantity"] <= 0:
            raise FilterRejected(
                f"quantity must be a positive whole number, not {order.get('quantity')!r}"
            )
        if order.get("customer") not in CUSTOMERS:
            raise FilterRejected(f"unknown customer {order.get('customer')!r}")
        return order


class Enricher(Filter):
    source, target, step = ENRICH, PRICE, "enrich"

    def transform(self, order):
        order["customer_tier"] = CUSTOMERS[order["customer"]]
        return order


class Pricer(Filter):
    source, target, step = PRICE, ARCHIVE, "price"

    def transform(self, order):
        unit = PRICES_CENTS.get(order["sku"])
        if unit is None:
            raise FilterRejected(f"no price for {order['sku']}")
        discount = {"gold": 10, "silver": 5}.get(order["customer_tier"], 0)
        order["unit_price_cents"] = unit
        order["total_cents"] = unit * order["quantity"] * (100 - discount) // 100
        return order


class FarEnd(Actor):
    """The archiver (end of the chain) or the failure monitor: tells the ledger what arrived."""

    prefetch = 20

    def __init__(self, context, label, ledger, queue_name):
        super().__init__(context, label)
        self.ledger = ledger
        self.queue_name = queue_name

    def setup(self):
        self.serve(self.queue_name, self.on_message)

    def on_message(self, channel, method, properties, body):
        self.ledger.replied(properties.correlation_id, body, thread=self.label)
        channel.basic_ack(delivery_tag=method.delivery_tag)


class OrderSender(Client):
    """Puts orders into the first pipe; every `fail_every`-th one is bad (alternately where)."""

    def __init__(self, context, label, ledger, fail_every=4, **kw):
        super().__init__(context, label, ledger, **kw)
        self.fail_every = fail_every
        self.random = random.Random()

    def order(self, index):
        r = self.random
        order = {
            "order_id": f"ord-{new_id()[:12]}",
            "customer": r.choice(sorted(CUSTOMERS)),
            "sku": r.choice(sorted(PRICES_CENTS)),
            "quantity": r.randint(1, 12),
            "placed_at": now_iso(),
        }
        if self.fail_every and index % self.fail_every == self.fail_every - 1:
            if (index // self.fail_every) % 2 == 0:
                order["quantity"] = 0  # rejected by validate
            else:
                order["sku"] = UNKNOWN_SKU  # rejected by price, two hops later
        return order

    def call(self, index):
        order = self.order(index)
        correlation_id = order["order_id"]
        body = dump(order)
        record = CallRecord(
            correlation_id=correlation_id,
            reply_to=None,
            service=service_name("", VALIDATE),
            request_body=body,
        )
        self.ledger.sent(correlation_id, record)
        self.channel.basic_publish(
            exchange="",
            routing_key=VALIDATE,
            properties=amqp.properties(
                correlation_id=correlation_id,
                message_id=new_id(),
                content_type="application/json",
                delivery_mode=2,
                headers={"traceparent": traceparent(), "x-pipeline-step": "submit"},
            ),
            body=body,
        )


def declare(channel):
    for queue in QUEUES:
        channel.queue_declare(queue=queue, durable=True)


def plan(context, ledger, calls=None, rate=None, fail_every=4):
    return Plan(
        name="pipes_and_filters",
        declare=declare,
        servers=[
            Validator(context, "pipeline validate filter"),
            Enricher(context, "pipeline enrich filter"),
            Pricer(context, "pipeline price filter"),
            FarEnd(context, "pipeline archiver", ledger, ARCHIVE),
            FarEnd(context, "pipeline failure monitor", ledger, FAILURES),
        ],
        clients=[
            OrderSender(
                context,
                "pipeline order sender",
                ledger,
                fail_every=fail_every,
                calls=calls,
                rate=rate,
            )
        ],
        queues=list(QUEUES),
    )


def run_forever(amqp_url, vhost, rate, stop_event, **options):
    run_forever_plan(plan, amqp_url, vhost, rate, stop_event, **options)
