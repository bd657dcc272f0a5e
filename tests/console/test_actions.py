"""Operator actions do what they say (counts before and after), are audited, and refused
to viewers."""

import pytest
from django.urls import reverse

from console.models import AuditEntry
from rabbit.management_http import BrokerNotFound
from tests.console.helpers import (
    HOSTILE_EXCHANGE,
    HOSTILE_KEY,
    HOSTILE_QUEUE,
    publish,
    wait_for_messages,
)


def _entry(action):
    return AuditEntry.objects.filter(action=action).latest("id")


def _follow(client, url, data):
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


# --- purge ----------------------------------------------------------------------------


def test_it_purges_a_queue(operator_client, operator, mgmt, topology):
    publish(mgmt, topology, "orders.new", 3)
    wait_for_messages(mgmt, topology, "orders.new", 3)
    url = reverse("queue_purge", args=[topology, "orders.new"])
    page = _follow(operator_client, url, {"depth": "3"})
    assert "Queue &#x27;orders.new&#x27; purged (about 3 per the last statistics)." in page
    wait_for_messages(mgmt, topology, "orders.new", 0)
    entry = _entry("purge_queue")
    assert (entry.username, entry.result, entry.vhost, entry.target) == (
        operator.username,
        "ok",
        topology,
        "queue orders.new",
    )
    assert entry.broker == "default"


def test_it_refuses_a_purge_to_a_viewer_and_audits_the_attempt(viewer_client, mgmt, topology):
    publish(mgmt, topology, "orders.new", 2)
    wait_for_messages(mgmt, topology, "orders.new", 2)
    response = viewer_client.post(reverse("queue_purge", args=[topology, "orders.new"]))
    assert response.status_code == 403
    assert mgmt.queue(topology, "orders.new")["messages"] == 2
    entry = _entry("queue_purge")
    assert entry.result == "denied" and entry.detail == "needs operator"


def test_it_reports_a_purge_of_a_queue_that_is_gone(operator_client, topology):
    page = _follow(operator_client, reverse("queue_purge", args=[topology, "vanished"]), {})
    assert "Purge of queue &#x27;vanished&#x27; failed" in page
    assert _entry("purge_queue").result == "failed"


# --- delete ---------------------------------------------------------------------------


def test_it_deletes_a_queue_with_a_hostile_name(operator_client, mgmt, topology):
    response = operator_client.post(reverse("queue_delete", args=[topology, HOSTILE_QUEUE]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("queues"))
    with pytest.raises(BrokerNotFound):
        mgmt.queue(topology, HOSTILE_QUEUE)
    entry = _entry("delete_queue")
    assert (entry.result, entry.target) == ("ok", f"queue {HOSTILE_QUEUE}")


def test_it_keeps_a_queue_that_is_not_empty_when_asked_to(operator_client, mgmt, topology):
    publish(mgmt, topology, "audit.log", 1)
    page = _follow(
        operator_client, reverse("queue_delete", args=[topology, "audit.log"]), {"if_empty": "on"}
    )
    assert "was not deleted" in page
    assert mgmt.queue(topology, "audit.log")["name"] == "audit.log"
    entry = _entry("delete_queue")
    assert entry.result == "failed"


def test_it_deletes_an_exchange_but_never_a_built_in_one(operator_client, mgmt, topology):
    response = operator_client.post(reverse("exchange_delete", args=[topology, HOSTILE_EXCHANGE]))
    assert response.status_code == 302
    with pytest.raises(BrokerNotFound):
        mgmt.exchange(topology, HOSTILE_EXCHANGE)
    assert _entry("delete_exchange").result == "ok"
    page = _follow(operator_client, reverse("exchange_delete", args=[topology, "amq.topic"]), {})
    assert "cannot be deleted" in page
    assert mgmt.exchange(topology, "amq.topic")["name"] == "amq.topic"
    assert _entry("delete_exchange").result == "failed"


def test_it_refuses_deletes_to_a_viewer(viewer_client, mgmt, topology):
    assert (
        viewer_client.post(reverse("queue_delete", args=[topology, "orders.new"])).status_code
        == 403
    )
    assert (
        viewer_client.post(reverse("exchange_delete", args=[topology, "orders"])).status_code == 403
    )
    assert mgmt.queue(topology, "orders.new")["name"] == "orders.new"
    assert mgmt.exchange(topology, "orders")["name"] == "orders"
    assert AuditEntry.objects.filter(result="denied").count() == 2


# --- publish --------------------------------------------------------------------------


def test_it_publishes_with_confirms_and_reports_routing(operator_client, operator, mgmt, topology):
    url = reverse("exchange_publish", args=[topology, "orders"])
    page = _follow(
        operator_client,
        url,
        {
            "routing_key": "order.created",
            "body": '{"id": 7}',
            "body_encoding": "text",
            "delivery_mode": "2",
            "content_type": "application/json",
            "headers": '{"attempt": 2, "tenant": "<b>acme</b>"}',
            "correlation_id": "c-7",
            "mandatory": "on",
            "next": reverse("exchange", args=[topology, "orders"]),
        },
    )
    assert "Message of 9 bytes routed and confirmed by the broker" in page
    wait_for_messages(mgmt, topology, "orders.new", 1)
    wait_for_messages(mgmt, topology, "audit.log", 1)  # through orders → audit (#)
    [message] = mgmt.peek(topology, "orders.new", count=1)
    assert message["payload"] == '{"id": 7}'
    assert message["properties"]["headers"] == {"attempt": 2, "tenant": "<b>acme</b>"}
    assert message["properties"]["correlation_id"] == "c-7"
    assert message["properties"]["delivery_mode"] == 2
    entry = _entry("publish")
    assert (entry.username, entry.result) == (operator.username, "ok")
    assert entry.detail == "9 bytes, routed and confirmed"


def test_it_says_when_no_queue_takes_a_mandatory_message(operator_client, mgmt, topology):
    page = _follow(
        operator_client,
        reverse("exchange_publish", args=[topology, "dlx"]),
        {
            "routing_key": "nobody",
            "body": "x",
            "body_encoding": "text",
            "delivery_mode": "1",
            "mandatory": "on",
        },
    )
    assert "Message returned: no queue is bound" in page
    assert "312 NO_ROUTE" in page
    entry = _entry("publish")
    assert entry.result == "failed" and "returned: 312 NO_ROUTE" in entry.detail


def test_it_publishes_binary_bodies_to_a_hostile_queue_through_the_default_exchange(
    operator_client, mgmt, topology
):
    url = reverse("exchange_publish", args=[topology, ""])
    _follow(
        operator_client,
        url,
        {
            "routing_key": HOSTILE_QUEUE,
            "body": "//79/A==",
            "body_encoding": "base64",
            "delivery_mode": "2",
            "mandatory": "on",
            "headers": "x-note: hello: world",
        },
    )
    wait_for_messages(mgmt, topology, HOSTILE_QUEUE, 1)
    [message] = mgmt.peek(topology, HOSTILE_QUEUE, count=1)
    assert message["payload"] == "//79/A==" and message["payload_encoding"] == "base64"
    assert message["properties"]["headers"] == {"x-note": "hello: world"}


def test_it_refuses_a_message_it_cannot_read_and_keeps_the_form(operator_client, topology):
    url = reverse("exchange_publish", args=[topology, "orders"])
    response = operator_client.post(
        url,
        {
            "routing_key": "k",
            "body": "not base64!",
            "body_encoding": "base64",
            "delivery_mode": "2",
            "expiration": "soon",
        },
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "The body is not valid base64." in page
    assert "Expiration is a whole number of milliseconds." in page
    assert "not base64!" in page
    assert _entry("publish").result == "failed"


def test_it_refuses_publishing_to_a_viewer(viewer_client, mgmt, topology):
    url = reverse("exchange_publish", args=[topology, ""])
    response = viewer_client.post(
        url,
        {"routing_key": "orders.new", "body": "x", "body_encoding": "text", "delivery_mode": "2"},
    )
    assert response.status_code == 403
    assert viewer_client.get(url).status_code == 403
    assert _entry("exchange_publish").result == "denied"


# --- bindings -------------------------------------------------------------------------


def _bindings(mgmt, vhost, queue):
    return {(b["source"], b["routing_key"]) for b in mgmt.queue_bindings(vhost, queue)}


def test_it_adds_and_removes_a_binding(operator_client, mgmt, topology):
    add = reverse("binding_add", args=[topology])
    page = _follow(
        operator_client,
        add,
        {
            "source": "orders",
            "destination_type": "q",
            "destination": "orders.dead",
            "routing_key": "order.cancelled",
            "arguments": '{"x-note": "test"}',
            "next": reverse("queue", args=[topology, "orders.dead"]),
        },
    )
    assert "Bound exchange orders → queue orders.dead (key &#x27;order.cancelled&#x27;)." in page
    assert ("orders", "order.cancelled") in _bindings(mgmt, topology, "orders.dead")
    binding = next(
        b
        for b in mgmt.queue_bindings(topology, "orders.dead")
        if b["routing_key"] == "order.cancelled"
    )
    assert binding["arguments"] == {"x-note": "test"}
    assert _entry("bind").result == "ok"
    _follow(
        operator_client,
        reverse("binding_remove", args=[topology]),
        {
            "source": "orders",
            "destination_type": "q",
            "destination": "orders.dead",
            "properties_key": binding["properties_key"],
            "routing_key": "order.cancelled",
        },
    )
    assert ("orders", "order.cancelled") not in _bindings(mgmt, topology, "orders.dead")
    assert _entry("unbind").result == "ok"


def test_it_removes_a_binding_with_hostile_names_and_key(operator_client, mgmt, topology):
    [binding] = [
        b for b in mgmt.queue_bindings(topology, HOSTILE_QUEUE) if b["source"] == HOSTILE_EXCHANGE
    ]
    assert binding["routing_key"] == HOSTILE_KEY
    _follow(
        operator_client,
        reverse("binding_remove", args=[topology]),
        {
            "source": HOSTILE_EXCHANGE,
            "destination_type": "q",
            "destination": HOSTILE_QUEUE,
            "properties_key": binding["properties_key"],
            "routing_key": HOSTILE_KEY,
        },
    )
    assert (HOSTILE_EXCHANGE, HOSTILE_KEY) not in _bindings(mgmt, topology, HOSTILE_QUEUE)


def test_it_binds_exchange_to_exchange_and_explains_bad_arguments(operator_client, mgmt, topology):
    page = _follow(
        operator_client,
        reverse("binding_add", args=[topology]),
        {
            "source": "orders",
            "destination_type": "e",
            "destination": "dlx",
            "routing_key": "x",
            "arguments": "[1, 2]",
        },
    )
    assert "The arguments must be a JSON object." in page
    assert _entry("bind").result == "failed"
    _follow(
        operator_client,
        reverse("binding_add", args=[topology]),
        {"source": "orders", "destination_type": "e", "destination": "dlx", "routing_key": "x"},
    )
    assert any(b["source"] == "orders" for b in mgmt.exchange_bindings_in(topology, "dlx"))
    page = _follow(
        operator_client,
        reverse("binding_add", args=[topology]),
        {"source": "orders", "destination_type": "q", "destination": "no-such-queue"},
    )
    assert "failed" in page
    assert _entry("bind").result == "failed"


def test_it_refuses_binding_changes_to_a_viewer(viewer_client, mgmt, topology):
    before = _bindings(mgmt, topology, "orders.new")
    for name in ("binding_add", "binding_remove"):
        response = viewer_client.post(
            reverse(name, args=[topology]),
            {
                "source": "orders",
                "destination_type": "q",
                "destination": "orders.new",
                "routing_key": "order.created",
                "properties_key": "order.created",
            },
        )
        assert response.status_code == 403
    assert _bindings(mgmt, topology, "orders.new") == before


def test_it_requires_the_csrf_token_for_actions(mgmt, operator, topology):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    publish(mgmt, topology, "orders.new", 1)
    response = client.post(reverse("queue_purge", args=[topology, "orders.new"]))
    assert response.status_code == 403
    wait_for_messages(mgmt, topology, "orders.new", 1)  # not purged
