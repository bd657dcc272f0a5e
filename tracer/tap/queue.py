"""The tap queue of a traced vhost: durable, bounded, bound to the trace exchange."""

from typing import Any

TRACE_EXCHANGE = "amq.rabbitmq.trace"
DROPPED_QUEUE_MAX_LENGTH = 100_000


def tap_queue_arguments(max_length: int, max_bytes: int, drops_exchange: str) -> dict[str, Any]:
    return {
        "x-max-length": max_length,
        "x-max-length-bytes": max_bytes,
        "x-overflow": "drop-head",
        "x-dead-letter-exchange": drops_exchange,
    }


def declare_tap_queue(channel: Any, queue_name: str, max_length: int, max_bytes: int) -> Any:
    """The bounded tap queue bound to the trace exchange, and its drop counter.

    Bounded in messages and in bytes: a Warren that is away for long can never
    fill the broker's memory or disk; the oldest events go first (to the drop
    counter). `channel`: a pika channel (rabbit.amqp); returns its Queue.DeclareOk
    frame. Raises amqp.ChannelClosedByBroker (406) when the queue exists with
    other bounds: see VhostReader._declare."""
    drops_exchange = f"{queue_name}.drops"
    dropped_queue = f"{queue_name}.dropped"
    channel.exchange_declare(drops_exchange, "fanout", durable=True)
    channel.queue_declare(
        dropped_queue,
        durable=True,
        arguments={"x-max-length": DROPPED_QUEUE_MAX_LENGTH, "x-overflow": "drop-head"},
    )
    channel.queue_bind(dropped_queue, drops_exchange)
    declared = channel.queue_declare(
        queue_name,
        durable=True,
        arguments=tap_queue_arguments(max_length, max_bytes, drops_exchange),
    )
    channel.queue_bind(queue_name, TRACE_EXCHANGE, "#")
    return declared
