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
