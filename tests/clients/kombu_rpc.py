"""kombu's producer and consumer with a reply queue, as a hand-rolled kombu service
does it: requests to a named queue through the default exchange with reply_to and
correlation_id, replies to the default exchange with routing key = reply_to."""

import time
import uuid
from typing import Any

from kombu import Connection, Producer, Queue

from tests.clients.calls import APART_S, ClientCall, SocketTimes, vhost_url
from tests.clients.kombu_service import replies, serving

SERVICE_QUEUE = "kombu_rpc"


def answer(producer: Producer, body: Any, message: Any) -> None:
    producer.publish(
        {"result": body["n"] * 2},
        exchange="",
        routing_key=message.properties["reply_to"],
        correlation_id=message.properties["correlation_id"],
        serializer="json",
    )


def run(base_url: str, vhost: str, calls: int) -> list[ClientCall]:
    url = vhost_url(base_url, vhost)
    queue = Queue(SERVICE_QUEUE, durable=False, auto_delete=True)
    done = []
    with serving(url, queue, answer, what="kombu"), Connection(url) as connection:
        reply_queue = Queue(
            f"kombu-replies-{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True
        )
        wire = SocketTimes()
        wire.watch(connection.connection.transport)  # the client's own socket, not the server's
        producer = Producer(connection.channel())
        with replies(connection, reply_queue) as wait_for:
            for index in range(calls):
                corr = uuid.uuid4().hex
                producer.publish(
                    {"n": index},
                    exchange="",
                    routing_key=SERVICE_QUEUE,
                    reply_to=reply_queue.name,
                    correlation_id=corr,
                    serializer="json",
                )
                reply = wait_for(corr)
                client_ms = wire.round_trip_s * 1000
                assert reply == {"result": index * 2}
                done.append(ClientCall(corr, SERVICE_QUEUE, client_ms))
                time.sleep(APART_S)
    return done
