"""pika, the door for Warren's own AMQP traffic: connections, properties, errors.

Everything but the tap's hot path (rabbit/raw.py) goes through this module and
its two neighbours, rabbit/moving.py (the console's message move) and
rabbit/replaying.py (a replay job's confirmed-publish session), so a change of
AMQP client touches this package only.

Publishing here is confirmed and `mandatory`, so the caller learns whether the
broker took the message and routed it anywhere.
"""

import ssl
from collections.abc import Mapping
from typing import Final, Literal, TypeAlias, TypedDict, Unpack

import pika
import pika.exceptions

from rabbit.field_tables import FieldValue
from rabbit.tls import client_context, uses_tls

AMQPError = pika.exceptions.AMQPError
AMQPConnectionError = pika.exceptions.AMQPConnectionError
AMQPChannelError = pika.exceptions.AMQPChannelError
UnroutableError = pika.exceptions.UnroutableError
NackError = pika.exceptions.NackError
ChannelClosedByBroker = pika.exceptions.ChannelClosedByBroker


class ConnectionOptions(TypedDict, total=False):
    """What blocking_connection passes on to connection_parameters."""

    heartbeat: int
    blocked_timeout: float


def connection_parameters(
    url: str,
    vhost: str | None = None,
    name: str | None = None,
    heartbeat: int = 30,
    blocked_timeout: float = 30,
) -> pika.URLParameters:
    """pika parameters for an amqp:// or amqps:// URL, optionally for another vhost.

    `name` becomes the broker-side connection name, which the firehose reports
    in its `connection` header and the management API lists. `amqps://` uses
    the verifying context of rabbit/tls.py (the configured CA, host name checked).
    """
    params = pika.URLParameters(url)
    if uses_tls(url):
        params.ssl_options = pika.SSLOptions(client_context(), server_hostname=params.host)
    if vhost is not None:
        params.virtual_host = vhost
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = blocked_timeout
    params.connection_attempts = 1
    params.socket_timeout = 5
    if name:
        params.client_properties = {"connection_name": name, "product": "Warren"}
    return params


def blocking_connection(
    url: str,
    vhost: str | None = None,
    name: str | None = None,
    **options: Unpack[ConnectionOptions],
) -> pika.BlockingConnection:
    """A connection; a TLS failure (a certificate not verified) is an
    AMQPConnectionError like any other, with the reason in words."""
    params = connection_parameters(url, vhost=vhost, name=name, **options)
    try:
        return pika.BlockingConnection(params)
    except ssl.SSLError as error:
        detail = getattr(error, "verify_message", "") or error.reason or str(error)
        raise AMQPConnectionError(f"TLS to {params.host}:{params.port}: {detail}") from error


class BasicPropertyFields(TypedDict, total=False):
    """The keyword arguments of properties(): AMQP's basic properties, None when unset."""

    content_type: str | None
    content_encoding: str | None
    headers: Mapping[str, FieldValue] | None
    delivery_mode: int | None
    priority: int | None
    correlation_id: str | None
    reply_to: str | None
    expiration: str | None
    message_id: str | None
    timestamp: int | None
    type: str | None
    user_id: str | None
    app_id: str | None
    cluster_id: str | None


def properties(**fields: Unpack[BasicPropertyFields]) -> pika.BasicProperties:
    """Basic properties (content_type, correlation_id, reply_to, headers, ...)."""
    return pika.BasicProperties(**fields)


# The basic properties pika accepts, as the firehose names them.
BASIC_PROPERTY_NAMES: tuple[str, ...] = (
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

PublishOutcome: TypeAlias = Literal["confirmed", "returned", "nacked", "refused"]
CONFIRMED: Final = "confirmed"  # the broker routed the message and confirmed it
RETURNED: Final = "returned"  # mandatory and no queue took it (basic.return)
NACKED: Final = "nacked"  # the broker refused it (basic.nack)
REFUSED: Final = "refused"  # the broker closed the channel over it (no such exchange, access)


def publish_confirmed(
    url: str,
    vhost: str,
    exchange: str,
    routing_key: str,
    body: bytes | str,
    props: pika.BasicProperties | None = None,
    mandatory: bool = True,
    name: str = "warren-console",
) -> tuple[PublishOutcome, str]:
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
