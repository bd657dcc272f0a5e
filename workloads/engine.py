"""The machinery every seed workload shares: actors (one thread, one connection), plans, runs.

A workload module describes a Plan: the topology to declare first, its server
actors and its client actors. `run_bounded_plan` runs one for a fixed number of
calls and cleans up; `run_forever_plan` keeps it running (reconnecting after a
broker restart) until a stop event is set.

pika's BlockingConnection is not thread-safe, so every actor owns its own
connection, opened in its own thread and pumped with process_data_events.
"""

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rabbit import amqp
from workloads.ledger import Ledger, WorkloadResult

log = logging.getLogger("workloads")

PUMP_SLICE_S = 0.2  # how long a thread blocks in the I/O loop before looking at the stop event
READY_TIMEOUT_S = 10.0
JOIN_TIMEOUT_S = 5.0


class WorkloadError(Exception):
    """A bounded run could not do what it was asked (broker unreachable, an actor failed)."""


class Restart(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside an actor to drop its connection and come back after a pause (a crash)."""


@dataclass
class Context:
    amqp_url: str
    vhost: str
    stop: threading.Event
    reconnect: bool  # the demo rides out broker restarts; a bounded run reports them
    call_timeout_s: float = 10.0  # how long a blocking client call waits for its reply


@dataclass
class Plan:
    name: str
    declare: object  # callable(channel): queues, exchanges and bindings that must exist first
    servers: list = field(default_factory=list)
    clients: list = field(default_factory=list)
    queues: list = field(default_factory=list)  # named queues a bounded run deletes afterwards


def service_name(exchange, routing_key):
    """The service as docs/architecture.md names it: routing key alone on the default exchange."""
    return routing_key if not exchange else f"{exchange} / {routing_key}"


def new_id():
    return uuid.uuid4().hex


def now_iso():
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def dump(payload):
    return json.dumps(payload, separators=(",", ":")).encode()


def close_quietly(connection):
    if connection is None:
        return
    try:
        if connection.is_open:
            connection.close()
    except Exception:  # noqa: BLE001 - a connection that is already gone needs no closing
        log.debug("closing a connection that was already gone", exc_info=True)


class Actor(threading.Thread):
    """One workload thread with one named connection: a server, a client, a filter."""

    prefetch: int | None = None  # basic_qos prefetch_count for consumers, when set

    def __init__(self, context, label):
        super().__init__(name=label, daemon=True)
        self.context = context
        self.label = label
        self.ready = threading.Event()
        self.error = None
        self.connection = None
        self.channel = None

    @property
    def stop(self):
        return self.context.stop

    @property
    def connection_name(self):
        return f"demo {self.label}"

    def run(self):
        backoff = 0.5
        while not self.stop.is_set():
            try:
                self._session()
                return
            except Restart as restart:
                log.info("%s: %s; back in %.1f s", self.label, restart, self.restart_delay())
                self.stop.wait(self.restart_delay())
            except Exception as error:
                if self.stop.is_set():
                    return  # errors while everything shuts down are not failures
                if not self.context.reconnect:
                    self.error = error
                    log.exception("%s failed", self.label)
                    return
                log.warning("%s: %s; reconnecting in %.1f s", self.label, error, backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 15.0)

    def restart_delay(self):
        return 1.0

    def _session(self):
        connection = amqp.blocking_connection(
            self.context.amqp_url, vhost=self.context.vhost, name=self.connection_name
        )
        try:
            self.connection = connection
            self.channel = connection.channel()
            if self.prefetch:
                self.channel.basic_qos(prefetch_count=self.prefetch)
            self.setup()
            self.ready.set()
            self.work()
        finally:
            close_quietly(connection)

    # --- for subclasses -------------------------------------------------------

    def setup(self):
        """Declare private queues and start consuming; runs on every (re)connection."""

    def work(self):
        self.pump_until_stopped()

    def pump(self, seconds, until=None):
        """Serve this connection's callbacks for up to `seconds`, or until `until()` is true.

        Returns whether `until()` came true (False when time ran out or on stop).
        """
        deadline = time.monotonic() + seconds
        while not self.stop.is_set():
            if until is not None and until():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.connection.process_data_events(time_limit=min(remaining, PUMP_SLICE_S))
            self.after_pump()
        return False

    def pump_until_stopped(self):
        while not self.stop.is_set():
            self.connection.process_data_events(time_limit=PUMP_SLICE_S)
            self.after_pump()

    def after_pump(self):
        """Hook run after each slice of the I/O loop (outside any callback)."""

    def serve(self, queue, handler):
        """Consume `queue` (manual acks) with `handler`, surviving messages it cannot handle.

        Anything can land in these queues (a replay edited in the console, a
        hand-published test): a message the handler chokes on is answered with
        an error when it asks for a reply, and rejected without requeue, rather
        than crashing the server into a redelivery loop.
        """

        def guarded(channel, method, properties, body):
            try:
                handler(channel, method, properties, body)
            except (amqp.AMQPError, Restart):
                raise
            except Exception as error:  # noqa: BLE001 - bad input, see above
                log.warning("%s: cannot handle a message from %s: %r", self.label, queue, error)
                if properties.reply_to:
                    self.reply(properties, dump({"error": f"bad request: {error}"}))
                channel.basic_reject(delivery_tag=method.delivery_tag, requeue=False)

        self.channel.basic_consume(queue=queue, on_message_callback=guarded)

    def reply(self, properties, payload, content_type="application/json", **fields):
        """Publish `payload` to the request's reply_to, echoing its correlation id if any."""
        reply_properties = amqp.properties(
            correlation_id=properties.correlation_id,
            content_type=content_type,
            **fields,
        )
        self.channel.basic_publish(
            exchange="",
            routing_key=properties.reply_to,
            properties=reply_properties,
            body=payload,
        )


class Client(Actor):
    """An actor that makes `calls` calls (None: until stopped) at `rate` per second."""

    def __init__(self, context, label, ledger, calls=None, rate=None):
        super().__init__(context, label)
        self.ledger = ledger
        self.calls = calls
        self.rate = rate
        self.index = 0  # survives reconnections
        self.published = threading.Event()

    def work(self):
        interval = 1.0 / self.rate if self.rate else 0.0
        next_at = time.monotonic()
        while not self.stop.is_set() and (self.calls is None or self.index < self.calls):
            if interval:
                self.pump(next_at - time.monotonic())
                if self.stop.is_set():
                    break
                # After a stall, carry on at the rate instead of catching up in a burst.
                next_at = max(next_at + interval, time.monotonic() - interval)
            else:
                self.connection.process_data_events(time_limit=0)
            self.call(self.index)
            self.index += 1
        self.published.set()
        self.pump_until_stopped()

    def call(self, index):
        raise NotImplementedError


def _declare(plan, context):
    connection = amqp.blocking_connection(
        context.amqp_url, vhost=context.vhost, name=f"demo {plan.name} setup"
    )
    try:
        plan.declare(connection.channel())
    finally:
        close_quietly(connection)


def _delete_queues(plan, context):
    if not plan.queues:
        return
    connection = amqp.blocking_connection(
        context.amqp_url, vhost=context.vhost, name=f"demo {plan.name} cleanup"
    )
    try:
        channel = connection.channel()
        for queue in plan.queues:
            try:
                channel.queue_delete(queue=queue)
            except amqp.ChannelClosedByBroker:
                channel = connection.channel()
    finally:
        close_quietly(connection)


def _failures(actors):
    return [f"{actor.label}: {actor.error!r}" for actor in actors if actor.error is not None]


def _wait_ready(actors, timeout):
    deadline = time.monotonic() + timeout
    for actor in actors:
        while not actor.ready.wait(0.05):
            if actor.error is not None or not actor.is_alive():
                raise WorkloadError("; ".join(_failures(actors)) or f"{actor.label} stopped")
            if time.monotonic() > deadline:
                raise WorkloadError(f"{actor.label} was not ready after {timeout:.0f} s")


def run_bounded_plan(make_plan, amqp_url, vhost, calls, timeout_s, **options):
    """Run a workload for exactly `calls` calls, wait for the answers, stop, clean up."""
    context = Context(amqp_url, vhost, threading.Event(), reconnect=False, call_timeout_s=timeout_s)
    ledger = Ledger(keep=True)
    plan = make_plan(context, ledger, calls=calls, **options)
    try:
        _declare(plan, context)
    except amqp.AMQPError as error:
        raise WorkloadError(f"{plan.name}: cannot set up on the broker: {error!r}") from error
    actors = []
    cleanup_failure = None
    try:
        for server in plan.servers:
            actors.append(server)
            server.start()
        _wait_ready(plan.servers, READY_TIMEOUT_S)
        for client in plan.clients:
            actors.append(client)
            client.start()
        _wait_ready(plan.clients, READY_TIMEOUT_S)
        rate = options.get("rate")
        publishing_s = timeout_s + (calls / rate if rate else 0.0)
        deadline = time.monotonic() + publishing_s
        for client in plan.clients:
            while not client.published.wait(0.05):
                if client.error is not None or time.monotonic() > deadline:
                    break
        ledger.wait_done(timeout_s)
    finally:
        context.stop.set()
        for actor in actors:
            actor.join(JOIN_TIMEOUT_S)
        try:
            _delete_queues(plan, context)
        except amqp.AMQPError as error:
            cleanup_failure = f"deleting its queues: {error!r}"
    failures = _failures(actors) + ([cleanup_failure] if cleanup_failure else [])
    if failures:
        raise WorkloadError(f"{plan.name}: " + "; ".join(failures))
    return WorkloadResult(calls=ledger.records())


def run_forever_plan(make_plan, amqp_url, vhost, rate, stop_event, ledger=None, **options):
    """Run a workload at `rate` calls per second until `stop_event` is set.

    The topology stays when it stops, so the console still shows it.
    """
    context = Context(amqp_url, vhost, stop_event, reconnect=True)
    ledger = ledger if ledger is not None else Ledger(keep=False)
    plan = make_plan(context, ledger, calls=None, rate=rate, **options)
    backoff = 0.5
    while not stop_event.is_set():
        try:
            _declare(plan, context)
            break
        except amqp.AMQPError as error:
            log.warning("%s: cannot set up (%s); retrying in %.1f s", plan.name, error, backoff)
            stop_event.wait(backoff)
            backoff = min(backoff * 2, 15.0)
    if stop_event.is_set():
        return
    actors = [*plan.servers, *plan.clients]
    for server in plan.servers:
        server.start()
    # Clients wait for the servers a little, so the first calls find someone consuming.
    deadline = time.monotonic() + READY_TIMEOUT_S
    for server in plan.servers:
        server.ready.wait(max(0.0, deadline - time.monotonic()))
    for client in plan.clients:
        client.start()
    stop_event.wait()
    for actor in actors:
        actor.join(JOIN_TIMEOUT_S)
