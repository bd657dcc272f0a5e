"""The tap queue of a traced vhost: durable, bounded, bound to the trace exchange."""

from typing import Any

from rabbit import amqp

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
    other bounds: see open_tap_queue."""
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


def open_tap_queue(
    connection: Any, vhost: str, queue_name: str, max_length: int, max_bytes: int
) -> tuple[Any, Any, str]:
    """The tap queue, declared with the configured bounds: (channel, DeclareOk,
    problem) on `connection` (pika's).

    A durable queue keeps the arguments it was first declared with, and the
    broker refuses (406) to declare it with others. Then the queue is used as
    it is, nothing in it lost, and the problem says how to apply the new
    bounds (`manage.py untrace`, then start the tap again)."""
    channel = connection.channel()
    try:
        return channel, declare_tap_queue(channel, queue_name, max_length, max_bytes), ""
    except amqp.ChannelClosedByBroker as error:
        if error.reply_code != 406:
            raise
    channel = connection.channel()
    declared = channel.queue_declare(queue_name, passive=True)
    channel.queue_bind(queue_name, TRACE_EXCHANGE, "#")
    problem = (
        f"vhost {vhost!r}: the tap queue {queue_name!r} keeps the bounds it was "
        f"declared with, not {max_length:,} messages and {max_bytes:,} bytes: "
        f"stop the tap, run `manage.py untrace {vhost}`, then start it again "
        "(what the queue holds is dropped then)"
    )
    return channel, declared, problem
