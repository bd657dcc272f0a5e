"""Synthetic firehose frames, shaped like the broker's (see test_decoding for real ones)."""

import uuid

from tracer.tap.decoding import decode

S = 1_000_000
T0 = 1_700_000_000 * S


def frame(
    kind,
    at,
    vhost="v",
    exchange="",
    routing_key="rpc_queue",
    queue=None,
    props=None,
    body=b"{}",
    redelivered=False,
    routed=None,
    tap_redelivered=False,
    backlog=False,
    limit=65536,
):
    headers = {
        "exchange_name": exchange,
        "routing_keys": [routing_key],
        "properties": dict(props or {}),
        "node": "rabbit@test",
        "vhost": vhost,
        "connection": "127.0.0.1:5000 -> 127.0.0.1:5672",
        "channel": 1,
        "user": "guest",
    }
    if kind == "publish":
        headers["routed_queues"] = [routing_key] if routed is None else routed
        key = "publish." + exchange
    else:
        headers["redelivered"] = 1 if redelivered else 0
        key = "deliver." + (queue or routing_key)
    event = decode(key, headers, body, T0 + at, limit, tap_redelivered=tap_redelivered)
    event.backlog = backlog
    return event


def rpc_call(
    at=0,
    corr=None,
    reply_to="amq.gen-reply",
    service="rpc_queue",
    vhost="v",
    wait=2_000,
    work=3_000,
    back=1_500,
    body=b'{"n": 30}',
    answer=b"832040",
    deliver_reply=True,
):
    """The four trace events of one call, `at` µs after T0."""
    corr = uuid.uuid4().hex if corr is None else corr
    props = {"correlation_id": corr, "reply_to": reply_to} if corr else {"reply_to": reply_to}
    reply_props = {"correlation_id": corr} if corr else {}
    events = [
        frame("publish", at, vhost=vhost, routing_key=service, props=props, body=body),
        frame(
            "deliver",
            at + wait,
            vhost=vhost,
            routing_key=service,
            queue=service,
            props=props,
            body=body,
        ),
        frame(
            "publish",
            at + wait + work,
            vhost=vhost,
            routing_key=reply_to,
            props=reply_props,
            body=answer,
            routed=[] if reply_to.startswith("amq.rabbitmq.reply-to.") else [reply_to],
        ),
    ]
    if deliver_reply:
        events.append(
            frame(
                "deliver",
                at + wait + work + back,
                vhost=vhost,
                routing_key=reply_to,
                queue=reply_to,
                props=reply_props,
                body=answer,
            )
        )
    return corr, events
