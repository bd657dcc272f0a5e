"""Moving messages from one queue to another (the console's operator action).

Each message is republished with publisher confirms and `mandatory` before
its original is acked, so a message is never lost on the way; at worst it
is in both queues.
"""

from collections.abc import Mapping
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

from rabbit.amqp import (
    ChannelClosedByBroker,
    NackError,
    UnroutableError,
    blocking_connection,
)


class ConsoleMoveError(ValueError):
    """A move that cannot start (same queue, nowhere to send, unknown queue)."""


def death_destination(headers: Mapping[str, Any] | None, how: str) -> tuple[str, str] | None:
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


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class MoveResult:
    """How a move went: counts, where messages went, and why it stopped early."""

    def __init__(self) -> None:
        self.available = 0
        self.moved = 0
        self.stopped = ""
        self.destinations: dict[tuple[str, str], int] = {}  # (exchange, routing key): moved

    def count(self, exchange: str, routing_key: str) -> None:
        key = (exchange, routing_key)
        self.destinations[key] = self.destinations.get(key, 0) + 1
        self.moved += 1


def move_messages(
    url: str,
    vhost: str,
    source_queue: str,
    target_queue: str | None = None,
    x_death: str | None = None,
    limit: int | None = None,
    name: str = "warren-move",
) -> MoveResult:
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


def _move_loop(
    channel: BlockingChannel,
    source_queue: str,
    target_queue: str | None,
    x_death: str | None,
    budget: int,
    result: MoveResult,
) -> None:
    while result.moved < budget:
        method, props, body = channel.basic_get(source_queue, auto_ack=False)
        if method is None:
            return
        if target_queue is not None:
            exchange, routing_key = "", target_queue
        else:
            assert x_death is not None  # move_messages refuses a move without a target or x-death
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
