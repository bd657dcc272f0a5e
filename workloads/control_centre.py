"""Seed workload 2: the control centre and its compute nodes.

Compute nodes consume `compute_node` and answer n with n + 1 (plain integers as
text, as in the original write-up). The control centre runs several client
threads that share ONE callback queue: a dispatcher owns it (exclusive, so only
its connection may consume it) and hands each reply to the thread whose
correlation id it carries.

The older variant (control_centre_no_correlation) sends no correlation id at
all: each client thread has its own callback queue and one call in flight, so
the next reply on that queue answers its oldest request. Warren pairs those by
reply_to (docs/architecture.md, Pairing).

Thread k of T only ever asks for numbers n with n % T == k, so a reply handed to
the wrong thread shows in the records.
"""

import collections
import logging
import queue
import random
import threading
import time

from rabbit import amqp
from workloads.engine import Actor, Client, Plan, new_id, run_forever_plan, service_name
from workloads.ledger import CallRecord

log = logging.getLogger("workloads")

QUEUE = "compute_node"
LEGACY_QUEUE = "compute_node_legacy"


class ComputeNode(Actor):
    prefetch = 1

    def __init__(self, context, label, queue_name):
        super().__init__(context, label)
        self.queue_name = queue_name
        self.random = random.Random()

    def setup(self):
        self.serve(self.queue_name, self.on_request)

    def on_request(self, channel, method, properties, body):
        n = int(body.decode())
        time.sleep(self.random.uniform(0.002, 0.02))  # the node's "computation"
        self.reply(properties, str(n + 1).encode(), content_type="text/plain")
        channel.basic_ack(delivery_tag=method.delivery_tag)


class ReplyDispatcher(Actor):
    """Consumes the control centre's one shared callback queue, routing replies to threads."""

    def __init__(self, context, label):
        super().__init__(context, label)
        self.callback_queue = None
        self._inboxes = {}
        self._lock = threading.Lock()

    def setup(self):
        declared = self.channel.queue_declare(queue="", exclusive=True)
        self.callback_queue = declared.method.queue
        self.channel.basic_consume(
            queue=self.callback_queue, on_message_callback=self.on_reply, auto_ack=True
        )

    def expect(self, correlation_id, inbox):
        with self._lock:
            self._inboxes[correlation_id] = inbox

    def forget(self, correlation_id):
        with self._lock:
            self._inboxes.pop(correlation_id, None)

    def on_reply(self, channel, method, properties, body):
        with self._lock:
            inbox = self._inboxes.pop(properties.correlation_id, None)
        if inbox is None:
            log.info("%s: reply for no waiting thread (%s)", self.label, properties.correlation_id)
            return
        inbox.put((properties.correlation_id, body))


class ControlCentreClient(Client):
    """One control-centre thread: blocking calls, replies arrive via the dispatcher."""

    def __init__(self, context, label, ledger, dispatcher, number, threads, **kw):
        super().__init__(context, label, ledger, **kw)
        self.dispatcher = dispatcher
        self.number = number
        self.threads = threads
        self.inbox = queue.Queue()

    def call(self, index):
        n = self.number + self.threads * index
        correlation_id = new_id()
        body = str(n).encode()
        callback_queue = self.dispatcher.callback_queue
        record = CallRecord(
            correlation_id=correlation_id,
            reply_to=callback_queue,
            service=service_name("", QUEUE),
            request_body=body,
        )
        self.dispatcher.expect(correlation_id, self.inbox)
        self.ledger.sent(correlation_id, record)
        self.channel.basic_publish(
            exchange="",
            routing_key=QUEUE,
            properties=amqp.properties(
                correlation_id=correlation_id, reply_to=callback_queue, content_type="text/plain"
            ),
            body=body,
        )
        deadline = time.monotonic() + self.context.call_timeout_s
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                got, reply = self.inbox.get(timeout=0.1)
            except queue.Empty:
                self.connection.process_data_events(time_limit=0)  # heartbeats
                continue
            self.ledger.replied(got, reply, thread=self.label)
            if got == correlation_id:
                return
        self.dispatcher.forget(correlation_id)


class LegacyClient(Client):
    """The older control centre: no correlation id, its own callback queue, one call at a time."""

    def __init__(self, context, label, ledger, number, threads, **kw):
        super().__init__(context, label, ledger, **kw)
        self.number = number
        self.threads = threads
        self.callback_queue = None
        self.outstanding = collections.deque()  # ledger keys, oldest first

    def setup(self):
        # A new connection means a new callback queue: nothing still owed goes to it.
        self.outstanding.clear()
        declared = self.channel.queue_declare(queue="", exclusive=True)
        self.callback_queue = declared.method.queue
        self.channel.basic_consume(
            queue=self.callback_queue, on_message_callback=self.on_reply, auto_ack=True
        )

    def on_reply(self, channel, method, properties, body):
        if not self.outstanding:
            log.info("%s: a reply nobody asked for", self.label)
            return
        # No correlation id: the oldest outstanding request takes the reply.
        self.ledger.replied(self.outstanding.popleft(), body, thread=self.label)

    def call(self, index):
        n = self.number + self.threads * index
        key = new_id()  # the ledger's own key; nothing of it travels
        body = str(n).encode()
        record = CallRecord(
            correlation_id=None,
            reply_to=self.callback_queue,
            service=service_name("", LEGACY_QUEUE),
            request_body=body,
        )
        self.outstanding.append(key)
        self.ledger.sent(key, record)
        self.channel.basic_publish(
            exchange="",
            routing_key=LEGACY_QUEUE,
            properties=amqp.properties(reply_to=self.callback_queue, content_type="text/plain"),
            body=body,
        )
        self.pump(self.context.call_timeout_s, until=lambda: key not in self.outstanding)


def _declare(queue_name):
    def declare(channel):
        channel.queue_declare(queue=queue_name)

    return declare


def _split(calls, threads):
    """Calls per thread, the first threads taking the remainder."""
    if calls is None:
        return [None] * threads
    return [calls // threads + (1 if i < calls % threads else 0) for i in range(threads)]


def plan(context, ledger, calls=None, rate=None, threads=3, nodes=2):
    dispatcher = ReplyDispatcher(context, "control centre reply dispatcher")
    per_thread_rate = rate / threads if rate else None
    clients = [
        ControlCentreClient(
            context,
            f"control centre client {number + 1}",
            ledger,
            dispatcher,
            number,
            threads,
            calls=share,
            rate=per_thread_rate,
        )
        for number, share in enumerate(_split(calls, threads))
    ]
    return Plan(
        name="control_centre",
        declare=_declare(QUEUE),
        servers=[ComputeNode(context, f"compute node {i}", QUEUE) for i in range(1, nodes + 1)]
        + [dispatcher],
        clients=clients,
        queues=[QUEUE],
    )


def plan_without_correlation(context, ledger, calls=None, rate=None, threads=2, nodes=2):
    per_thread_rate = rate / threads if rate else None
    clients = [
        LegacyClient(
            context,
            f"legacy control centre client {number + 1}",
            ledger,
            number,
            threads,
            calls=share,
            rate=per_thread_rate,
        )
        for number, share in enumerate(_split(calls, threads))
    ]
    return Plan(
        name="control_centre_no_correlation",
        declare=_declare(LEGACY_QUEUE),
        servers=[
            ComputeNode(context, f"legacy compute node {i}", LEGACY_QUEUE)
            for i in range(1, nodes + 1)
        ],
        clients=clients,
        queues=[LEGACY_QUEUE],
    )


def run_forever(amqp_url, vhost, rate, stop_event, **options):
    run_forever_plan(plan, amqp_url, vhost, rate, stop_event, **options)
