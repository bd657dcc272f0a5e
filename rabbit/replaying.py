"""A replay job's AMQP session: one connection and channel in confirm mode.

A replay job publishes many messages, so it keeps one connection and one
channel open for the whole job instead of a connection per message. Every
publish waits for the broker's confirm and is `mandatory`, so the job learns
per message whether the broker took it and routed it anywhere. For RPC
replays the session owns a fresh exclusive, server-named reply queue and
collects replies by correlation id.
"""

import pika
from pika.adapters.blocking_connection import BlockingChannel

from rabbit.amqp import (
    CONFIRMED,
    NACKED,
    REFUSED,
    RETURNED,
    AMQPError,
    ChannelClosedByBroker,
    NackError,
    PublishOutcome,
    UnroutableError,
    connection_parameters,
)


class Reply:
    """A reply collected by a ReplaySession: its properties, body and arrival (monotonic s)."""

    __slots__ = ("properties", "body", "received_at")

    properties: pika.BasicProperties
    body: bytes
    received_at: float

    def __init__(self, properties: pika.BasicProperties, body: bytes, received_at: float) -> None:
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

    def __init__(self, url: str, vhost: str, name: str = "warren-replay") -> None:
        import time

        self._clock = time.monotonic
        self.vhost = vhost
        params = connection_parameters(url, vhost=vhost, name=name)
        self.username: str = getattr(params.credentials, "username", "")
        self._connection = pika.BlockingConnection(params)
        self._channel: BlockingChannel  # opened below, reopened when the broker closes it
        self._reply_queue: str | None = None
        self._replies: dict[str, Reply] = {}  # by correlation id
        self._open_channel()

    def _open_channel(self) -> None:
        channel = self._connection.channel()
        channel.confirm_delivery()
        self._channel = channel
        if self._reply_queue is not None:
            self._consume_replies()

    def _consume_replies(self) -> None:
        def collect(
            channel: BlockingChannel,
            method: pika.spec.Basic.Deliver,
            properties: pika.BasicProperties,
            body: bytes,
        ) -> None:
            key = properties.correlation_id or ""
            self._replies.setdefault(key, Reply(properties, bytes(body), self._clock()))

        self._channel.basic_consume(self._reply_queue, collect, auto_ack=True)

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes | str,
        props: pika.BasicProperties | None = None,
    ) -> tuple[PublishOutcome, str]:
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

    def sleep(self, seconds: float) -> None:
        """Wait while still serving the connection (heartbeats, replies)."""
        if seconds > 0:
            self._connection.sleep(seconds)
        else:
            self._connection.process_data_events(time_limit=0)

    def reply_queue(self) -> str:
        """The name of this session's exclusive reply queue, declared on first use."""
        if self._reply_queue is None:
            declared = self._channel.queue_declare("", exclusive=True, auto_delete=True)
            self._reply_queue = declared.method.queue
            self._consume_replies()
        return self._reply_queue

    def wait_reply(self, correlation_id: str, timeout_s: float) -> Reply | None:
        """The Reply with this correlation id, or None after timeout_s seconds."""
        deadline = self._clock() + timeout_s
        while correlation_id not in self._replies:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return None
            self._connection.process_data_events(time_limit=min(remaining, 0.05))
        return self._replies.pop(correlation_id)

    def forget_replies(self) -> None:
        """Drops replies nobody waits for any more (late answers to timed-out calls)."""
        self._replies.clear()

    def close(self) -> None:
        try:
            if self._connection.is_open:
                self._connection.close()
        except AMQPError:
            pass  # a connection the broker already dropped needs no closing


def open_replay_session(url: str, vhost: str, name: str = "warren-replay") -> ReplaySession:
    return ReplaySession(url, vhost, name=name)
