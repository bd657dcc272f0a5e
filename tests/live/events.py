"""Firehose events for the live tests, shaped like the broker's, at times near now."""

import uuid

from tracer.tap.decoding import decode
from tracer.times import now_us

MS = 1000


def event(
    kind,
    at_us,
    vhost,
    exchange="",
    routing_key="rpc_queue",
    queue=None,
    props=None,
    body=b"{}",
    routed=None,
    connection="demo client",
    redelivered=False,
):
    headers = {
        "exchange_name": exchange,
        "routing_keys": [routing_key],
        "properties": dict(props or {}),
        "node": "rabbit@test",
        "vhost": vhost,
        "connection": connection,
        "channel": 1,
        "user": "guest",
    }
    if kind == "publish":
        headers["routed_queues"] = [routing_key] if routed is None else routed
        key = "publish." + exchange
    else:
        headers["redelivered"] = 1 if redelivered else 0
        key = "deliver." + (queue or routing_key)
    return decode(key, headers, body, at_us, 65536)


def rpc_call(
    vhost,
    routing_key="rpc_queue",
    exchange="",
    queue=None,
    latency_ms=5.0,
    start_us=None,
    corr=None,
    reply_to="amq.gen-reply",
    body=b'{"n": 30}',
    answer=b'{"fibonacci": 832040}',
    headers=None,
    answered=True,
    properties=None,
):
    """The events of one call (request, its delivery, reply, reply delivery)."""
    corr = uuid.uuid4().hex if corr is None else corr
    start = (now_us() - 2_000_000) if start_us is None else start_us
    wait = int(latency_ms * MS * 0.2)
    work = int(latency_ms * MS) - wait
    props = {"correlation_id": corr, "reply_to": reply_to}
    if headers:
        props["headers"] = headers
    props.update(properties or {})
    reply_props = {"correlation_id": corr}
    client, server = "demo client", "demo server"
    events = [
        event(
            "publish",
            start,
            vhost,
            exchange,
            routing_key,
            props=props,
            body=body,
            connection=client,
        ),
        event(
            "deliver",
            start + wait,
            vhost,
            exchange,
            routing_key,
            queue=queue or routing_key,
            props=props,
            body=body,
            connection=server,
        ),
    ]
    if answered:
        events += [
            event(
                "publish",
                start + wait + work,
                vhost,
                "",
                reply_to,
                props=reply_props,
                body=answer,
                connection=server,
            ),
            event(
                "deliver",
                start + wait + work + 300,
                vhost,
                "",
                reply_to,
                queue=reply_to,
                props=reply_props,
                body=answer,
                connection=client,
            ),
        ]
    return corr, events
