"""Hostile names through the real broker, the tap and every page that shows them.

A vhost, queues, an exchange, routing keys, header names and values and a
correlation id made of `<script>`, quotes, `/`, `%`, spaces, unicode, and
names of the full 255 bytes: an RPC call among them is traced by the real tap.
Everything is stored exactly, every page shows it escaped (never as markup),
and the URLs made from the names lead back to the same names.
"""

import uuid
from urllib.parse import unquote, urlencode

import pytest
from django.urls import resolve, reverse

from rabbit import amqp
from rabbit.brokers import default_amqp_url
from tests.polling import wait_until
from tests.tracer.tapping import TapProcess
from tracer.models import Flow, Message

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _full(prefix, size=255):
    """A name of exactly `size` bytes in UTF-8, with two-byte characters in it."""
    name = prefix + "é" * 40
    return name + "x" * (size - len(name.encode()))


# The firehose names a delivery "deliver.<queue>" and a publish "publish.<exchange>":
# past 247 bytes that routing key no longer fits AMQP's 255, and the broker cannot
# deliver the trace message to the tap at all (541 INTERNAL_ERROR). The longest
# queue and exchange names the tap can see are therefore 247 bytes.
TRACEABLE = 255 - len("deliver.")


@pytest.fixture
def hostile_vhost(mgmt):
    name = f"warren-test {SCRIPT}\"'/%ü-{uuid.uuid4().hex[:6]}"
    mgmt.create_vhost(name, description="Warren hostile-name test")
    yield name
    mgmt.set_tracing(name, False)
    mgmt.delete_vhost(name)


def _get(channel, queue, timeout=5.0):
    method, props, body = wait_until(
        lambda: channel.basic_get(queue, auto_ack=True),
        check=lambda got: got[0] is not None,
        timeout=timeout,
        what=f"a message in {queue!r}",
    )
    return props, body


def test_it_stores_hostile_names_exactly_and_shows_them_escaped(
    hostile_vhost, viewer_client, client, operator
):
    exchange = f"ex {SCRIPT}\"'/%ü"
    request_key = _full(f"key.{SCRIPT}.'\"/%.")
    service_queue = _full(f"q {SCRIPT}\"'/% ", TRACEABLE)
    reply_queue = f"reply {SCRIPT} \"'/%ü"
    corr = _full(f"corr-{SCRIPT}\"'/%")
    headers = {f"h-{SCRIPT}": f"v-{SCRIPT}\"'/%ü", "nested": {"<b>": ["'\"", "%2F"]}}
    assert len(request_key.encode()) == len(corr.encode()) == 255
    assert len(service_queue.encode()) == TRACEABLE

    with TapProcess(hostile_vhost):
        broker = amqp.blocking_connection(default_amqp_url(), vhost=hostile_vhost)
        channel = broker.channel()
        channel.exchange_declare(exchange, "topic")
        channel.queue_declare(service_queue)
        channel.queue_bind(service_queue, exchange, routing_key="#")
        channel.queue_declare(reply_queue)
        channel.basic_publish(
            exchange,
            request_key,
            b'{"q": "' + SCRIPT.encode() + b'"}',
            amqp.properties(correlation_id=corr, reply_to=reply_queue, headers=headers),
        )
        props, _ = _get(channel, service_queue)
        channel.basic_publish("", props.reply_to, b"answer", amqp.properties(correlation_id=corr))
        _get(channel, reply_queue)
        broker.close()
        wait_until(
            lambda: Flow.objects.filter(vhost=hostile_vhost, status="complete").exists(),
            timeout=20,
            what="the hostile call's flow",
        )

    # Stored exactly.
    request = Message.objects.get(vhost=hostile_vhost, event="publish", exchange=exchange)
    assert request.routing_keys == [request_key]
    assert request.correlation_id == corr and request.reply_to == reply_queue
    assert request.properties["headers"] == headers
    delivered = Message.objects.get(vhost=hostile_vhost, event="deliver", queue=service_queue)
    assert delivered.correlation_id == corr
    flow = Flow.objects.get(vhost=hostile_vhost)
    assert flow.correlation_id == corr and exchange in flow.service

    # URLs made from the names lead back to them.
    queue_url = reverse("queue", args=[hostile_vhost, service_queue])
    exchange_url = reverse("exchange", args=[hostile_vhost, exchange])
    # (The server decodes the path once before resolving it, as unquote does here.)
    assert resolve(unquote(queue_url)).kwargs == {"vhost": hostile_vhost, "name": service_queue}
    assert resolve(unquote(exchange_url)).kwargs == {"vhost": hostile_vhost, "name": exchange}
    query = urlencode({"vhost": hostile_vhost})
    pages = {
        "queue": queue_url,
        "exchange": exchange_url,
        "queues": "/queues/?" + query,
        "exchanges": "/exchanges/?" + query,
        "messages": "/messages/?" + urlencode({"vhost": hostile_vhost, "correlation_id": corr}),
        "message": f"/messages/{request.id}/",
        "flows": "/flows/?" + query,
        "flow": f"/flows/{flow.id}/",
        "live flows": "/live/?" + query,
        "live messages": "/live/messages/?" + query,
        "latency": "/latency/?" + urlencode({"vhost": hostile_vhost, "service": flow.service}),
        "conversation": "/conversation/?"
        + urlencode({"correlation_id": corr, "vhost": hostile_vhost}),
    }
    for name, path in pages.items():
        response = viewer_client.get(path)
        assert response.status_code == 200, f"{name}: {response.status_code}"
        page = response.content.decode()
        assert SCRIPT not in page, f"{name} page shows the name as markup"
        assert ESCAPED in page or "&lt;script&gt;" in page, f"{name} page does not show it"
    api = viewer_client.get("/api/messages?" + urlencode({"correlation_id": corr})).json()
    assert {m["id"] for m in api["results"]} >= {request.id, delivered.id}
    client.force_login(operator)
    replay = client.get(f"/replays/new?message={request.id}")
    assert replay.status_code == 200 and SCRIPT not in replay.content.decode()
