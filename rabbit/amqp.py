"""The one module that uses pika: connections, properties and the errors callers see.

Everything else (the tap, replays, the demo workloads) goes through here, so a
change of AMQP client touches one file.
"""

import pika
import pika.exceptions

AMQPError = pika.exceptions.AMQPError
AMQPConnectionError = pika.exceptions.AMQPConnectionError
AMQPChannelError = pika.exceptions.AMQPChannelError
UnroutableError = pika.exceptions.UnroutableError
NackError = pika.exceptions.NackError
ChannelClosedByBroker = pika.exceptions.ChannelClosedByBroker


def connection_parameters(url, vhost=None, name=None, heartbeat=30, blocked_timeout=30):
    """pika parameters for an amqp:// URL, optionally for another vhost.

    `name` becomes the broker-side connection name, which the firehose reports
    in its `connection` header and the management API lists.
    """
    params = pika.URLParameters(url)
    if vhost is not None:
        params.virtual_host = vhost
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = blocked_timeout
    params.connection_attempts = 1
    params.socket_timeout = 5
    if name:
        params.client_properties = {"connection_name": name, "product": "Warren"}
    return params


def blocking_connection(url, vhost=None, name=None, **options):
    return pika.BlockingConnection(connection_parameters(url, vhost=vhost, name=name, **options))


def properties(**fields):
    """Basic properties (content_type, correlation_id, reply_to, headers, ...)."""
    return pika.BasicProperties(**fields)


# --- Broker console: confirmed publish and message move ----------------------
# (Added for the console's operator actions; the rest of this module is the
# tracer's.) Both publish with publisher confirms and `mandatory`, so the
# caller learns whether the broker took the message and routed it anywhere.


class ConsoleMoveError(ValueError):
    """A move that cannot start (same queue, nowhere to send, unknown queue)."""


def publish_confirmed(
    url, vhost, exchange, routing_key, body, props=None, mandatory=True, name="warren-console"
):
    """Publish one message and wait for the broker's confirm.

    Returns ("confirmed", "") when routed and confirmed, ("returned", reason)
    when `mandatory` and no queue took it, ("nacked", reason) when the broker
    refused it. Channel errors (unknown exchange, access refused) raise
    AMQPChannelError with the broker's reply text.
    """
    connection = blocking_connection(url, vhost=vhost, name=name)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        try:
            channel.basic_publish(exchange, routing_key, body, props, mandatory=mandatory)
        except UnroutableError as error:
            returned = error.messages[0].method if error.messages else None
            reason = f"{returned.reply_code} {returned.reply_text}" if returned else "unroutable"
            return "returned", reason
        except NackError:
            return "nacked", "the broker did not accept the message (basic.nack)"
        return "confirmed", ""
    finally:
        if connection.is_open:
            connection.close()


def death_destination(headers, how):
    """Where a dead-lettered message came from, from its newest x-death entry.

    how="queue": ("", the queue it died in) — back to exactly that queue;
    how="route": (the exchange it was published to, its first routing key)
    — routed again as first published. None without a usable x-death.
    """
    deaths = (headers or {}).get("x-death") or []
    if not deaths or not isinstance(deaths[0], dict):
        return None
    newest = deaths[0]
    if how == "queue":
        queue = newest.get("queue")
        return ("", _text(queue)) if queue else None
    keys = newest.get("routing-keys") or []
    if "exchange" not in newest or not keys:
        return None
    return _text(newest["exchange"]), _text(keys[0])


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class MoveResult:
    """How a move went: counts, where messages went, and why it stopped early."""

    def __init__(self):
        self.available = 0
        self.moved = 0
        self.stopped = ""
        self.destinations = {}

    def count(self, exchange, routing_key):
        key = (exchange, routing_key)
        self.destinations[key] = self.destinations.get(key, 0) + 1
        self.moved += 1


def move_messages(
    url, vhost, source_queue, target_queue=None, x_death=None, limit=None, name="warren-move"
):
    """Move messages from source_queue without losing one.

    Either to target_queue (through the default exchange) or, with
    x_death="queue"|"route", back where each message was dead-lettered from.
    Each message is got with a manual ack, published with confirms and
    `mandatory`, and acked on the source only once the broker confirmed it
    routed; a returned or refused message is put back (nack, requeue) and the
    move stops there. If the connection drops mid-way the broker requeues the
    message in flight: at worst one message exists twice, never none.
    At most the messages present at the start are moved, so messages that
    find their way back into the source cannot make the move loop.
    """
    if target_queue is None and x_death not in ("queue", "route"):
        raise ConsoleMoveError("Choose a target queue or a way to use x-death.")
    if target_queue is not None and target_queue == source_queue:
        raise ConsoleMoveError("The target queue is the source queue.")
    result = MoveResult()
    connection = blocking_connection(url, vhost=vhost, name=name)
    try:
        # Errors before the first message (no such queue) reach the caller.
        channel = connection.channel()
        result.available = channel.queue_declare(source_queue, passive=True).method.message_count
        if target_queue is not None:
            channel.queue_declare(target_queue, passive=True)
        budget = result.available if limit is None else min(max(0, limit), result.available)
        channel.confirm_delivery()
        try:
            _move_loop(channel, source_queue, target_queue, x_death, budget, result)
        except ChannelClosedByBroker as error:
            # The unacked message in flight goes back to the source with the channel.
            result.stopped = f"the broker closed the channel: {error.reply_code} {error.reply_text}"
    finally:
        if connection.is_open:
            connection.close()
    return result


def _move_loop(channel, source_queue, target_queue, x_death, budget, result):
    while result.moved < budget:
        method, props, body = channel.basic_get(source_queue, auto_ack=False)
        if method is None:
            return
        if target_queue is not None:
            exchange, routing_key = "", target_queue
        else:
            destination = death_destination(props.headers, x_death)
            if destination is None or destination == ("", source_queue):
                channel.basic_nack(method.delivery_tag, requeue=True)
                result.stopped = (
                    "a message has no x-death header to go back by"
                    if destination is None
                    else "a message died in this very queue; it stays here"
                )
                return
            exchange, routing_key = destination
        try:
            channel.basic_publish(exchange, routing_key, body, props, mandatory=True)
        except UnroutableError:
            channel.basic_nack(method.delivery_tag, requeue=True)
            result.stopped = (
                f"exchange '{exchange}' routed key '{routing_key}' to no queue; "
                "that message stays in the source"
            )
            return
        except NackError:
            channel.basic_nack(method.delivery_tag, requeue=True)
            result.stopped = "the broker refused a message (basic.nack); it stays in the source"
            return
        channel.basic_ack(method.delivery_tag)
        result.count(exchange, routing_key)


# --- Replays: one confirmed-publish session per job, and RPC calls -----------
# (Added for replay/; everything above is untouched.) A replay job publishes
# many messages, so it keeps one connection and one channel open for the whole
# job instead of a connection per message. Every publish waits for the
# broker's confirm and is `mandatory`, so the job learns per message whether
# the broker took it and routed it anywhere. For RPC replays the session owns a
# fresh exclusive, server-named reply queue and collects replies by
# correlation id.

# The basic properties pika accepts, as the firehose names them.
BASIC_PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "headers",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)

CONFIRMED = "confirmed"  # the broker routed the message and confirmed it
RETURNED = "returned"  # mandatory and no queue took it (basic.return)
NACKED = "nacked"  # the broker refused it (basic.nack)
REFUSED = "refused"  # the broker closed the channel over it (no such exchange, access)


class Reply:
    """A reply collected by a ReplaySession: its properties, body and arrival (monotonic s)."""

    __slots__ = ("properties", "body", "received_at")

    def __init__(self, properties, body, received_at):
        self.properties = properties
        self.body = body
        self.received_at = received_at


class ReplaySession:
    """One connection and channel in confirm mode for a whole replay job.

    publish() returns (outcome, reason) with outcome one of CONFIRMED, RETURNED,
    NACKED, REFUSED; a channel the broker closes over one message is reopened,
    so one bad message does not end the job. Connection failures raise
    AMQPConnectionError (or another AMQPError) to the caller.
    """

    def __init__(self, url, vhost, name="warren-replay"):
        import time

        self._clock = time.monotonic
        self.vhost = vhost
        params = connection_parameters(url, vhost=vhost, name=name)
        self.username = getattr(params.credentials, "username", "")
        self._connection = pika.BlockingConnection(params)
        self._channel = None
        self._reply_queue = None
        self._replies = {}
        self._open_channel()

    def _open_channel(self):
        channel = self._connection.channel()
        channel.confirm_delivery()
        self._channel = channel
        if self._reply_queue is not None:
            self._consume_replies()

    def _consume_replies(self):
        def collect(channel, method, properties, body):
            key = properties.correlation_id or ""
            self._replies.setdefault(key, Reply(properties, bytes(body), self._clock()))

        self._channel.basic_consume(self._reply_queue, collect, auto_ack=True)

    def publish(self, exchange, routing_key, body, props=None):
        try:
            self._channel.basic_publish(exchange, routing_key, body, props, mandatory=True)
        except UnroutableError as error:
            returned = error.messages[0].method if error.messages else None
            reason = (
                f"{returned.reply_code} {returned.reply_text}: no queue is bound to take it"
                if returned
                else "unroutable"
            )
            return RETURNED, reason
        except NackError:
            return NACKED, "the broker did not accept the message (basic.nack)"
        except ChannelClosedByBroker as error:
            self._open_channel()
            return REFUSED, f"{error.reply_code} {error.reply_text}"
        return CONFIRMED, ""

    def sleep(self, seconds):
        """Wait while still serving the connection (heartbeats, replies)."""
        if seconds > 0:
            self._connection.sleep(seconds)
        else:
            self._connection.process_data_events(time_limit=0)

    def reply_queue(self):
        """The name of this session's exclusive reply queue, declared on first use."""
        if self._reply_queue is None:
            declared = self._channel.queue_declare("", exclusive=True, auto_delete=True)
            self._reply_queue = declared.method.queue
            self._consume_replies()
        return self._reply_queue

    def wait_reply(self, correlation_id, timeout_s):
        """The Reply with this correlation id, or None after timeout_s seconds."""
        deadline = self._clock() + timeout_s
        while correlation_id not in self._replies:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return None
            self._connection.process_data_events(time_limit=min(remaining, 0.05))
        return self._replies.pop(correlation_id)

    def forget_replies(self):
        """Drops replies nobody waits for any more (late answers to timed-out calls)."""
        self._replies.clear()

    def close(self):
        try:
            if self._connection.is_open:
                self._connection.close()
        except AMQPError:
            pass  # a connection the broker already dropped needs no closing


def open_replay_session(url, vhost, name="warren-replay"):
    return ReplaySession(url, vhost, name=name)
