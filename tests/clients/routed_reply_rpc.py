"""A framework whose reply_to is a routing key on its own exchange (nameko's pattern),
written with kombu the way such frameworks do it: one topic exchange for requests
and replies; the service's queue bound with "<service>.*"; the caller's reply
queue "rpc.reply-<service>-<caller id>" bound with the caller's id; a request
carries reply_to = the caller's id, and the reply is published to the same
exchange with routing key = reply_to, so the broker routes it to the caller's
queue, whose name is not the reply_to."""

import time
import uuid
from typing import Any

from kombu import Connection, Exchange, Producer, Queue

from tests.clients.calls import APART_S, ClientCall, SocketTimes, vhost_url
from tests.clients.kombu_service import replies, serving

EXCHANGE = Exchange("interop-rpc", type="topic", durable=False, auto_delete=True)
SERVICE = "greeting"


def answer(producer: Producer, body: Any, message: Any) -> None:
    method = message.delivery_info["routing_key"].split(".", 1)[1]
    result = f"{method}, {body['name']}!"
    producer.publish(
        {"result": result},
        routing_key=message.properties["reply_to"],
        correlation_id=message.properties["correlation_id"],
        serializer="json",
    )


def run(base_url: str, vhost: str, calls: int) -> list[ClientCall]:
    url = vhost_url(base_url, vhost)
    queue = Queue(
        f"rpc-{SERVICE}", EXCHANGE, routing_key=f"{SERVICE}.*", durable=False, auto_delete=True
    )
    caller_id = str(uuid.uuid4())
    done = []
    with (
        serving(url, queue, answer, what="routed-reply", exchange=EXCHANGE),
        Connection(url) as connection,
    ):
        reply_queue = Queue(
            f"rpc.reply-{SERVICE}-{caller_id}",
            EXCHANGE,
            routing_key=caller_id,
            exclusive=True,
            auto_delete=True,
        )
        wire = SocketTimes()
        wire.watch(connection.connection.transport)  # the client's own socket, not the server's
        producer = Producer(connection.channel(), exchange=EXCHANGE)
        with replies(connection, reply_queue) as wait_for:
            for index in range(calls):
                method = ("hello", "goodbye")[index % 2]
                corr = str(uuid.uuid4())
                producer.publish(
                    {"name": f"caller {index}"},
                    routing_key=f"{SERVICE}.{method}",
                    reply_to=caller_id,
                    correlation_id=corr,
                    serializer="json",
                )
                reply = wait_for(corr)
                client_ms = wire.round_trip_s * 1000
                assert reply == {"result": f"{method}, caller {index}!"}
                done.append(ClientCall(corr, f"{EXCHANGE.name} / {SERVICE}.{method}", client_ms))
                time.sleep(APART_S)
    return done
