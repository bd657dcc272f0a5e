"""Moving messages between queues: confirmed before acked, x-death aware, nothing lost."""

import pytest
from django.urls import reverse

from console.models import AuditEntry
from rabbit import amqp, moving
from rabbit.brokers import default_broker
from tests.console.helpers import publish, wait_for_messages


def _dead_letter(vhost, queue, count):
    """Reject `count` messages of queue so the broker dead-letters them (x-death)."""
    connection = amqp.blocking_connection(default_broker().amqp_url(), vhost=vhost)
    try:
        channel = connection.channel()
        for _ in range(count):
            method, _props, _body = channel.basic_get(queue, auto_ack=False)
            assert method is not None
            channel.basic_reject(method.delivery_tag, requeue=False)
    finally:
        connection.close()


def _move(client, vhost, source, **data):
    return client.post(reverse("queue_move", args=[vhost, source]), data, follow=True)


def test_it_moves_some_messages_to_another_queue(operator_client, operator, mgmt, topology):
    publish(mgmt, topology, "orders.dead", 5)
    response = _move(
        operator_client, topology, "orders.dead", mode="queue", target="orders.unrouted", limit="3"
    )
    assert "Moved 3 of 5 messages from &#x27;orders.dead&#x27; to queue orders.unrouted." in (
        response.content.decode()
    )
    wait_for_messages(mgmt, topology, "orders.dead", 2)
    wait_for_messages(mgmt, topology, "orders.unrouted", 3)
    moved = [m["payload"] for m in mgmt.peek(topology, "orders.unrouted", count=3)]
    assert moved == ["m0", "m1", "m2"]  # in order
    entry = AuditEntry.objects.get(action="move_messages")
    assert (entry.username, entry.result) == (operator.username, "ok")
    assert (
        entry.detail
        == "3 of 5 moved to queue orders.unrouted (3 to (AMQP default)/orders.unrouted)"
    )


def test_it_sends_dead_letters_back_to_the_queue_they_died_in(operator_client, mgmt, topology):
    publish(mgmt, topology, "orders.new", 4)
    _dead_letter(topology, "orders.new", 4)  # orders.new dead-letters to dlx → orders.dead
    wait_for_messages(mgmt, topology, "orders.dead", 4)
    wait_for_messages(mgmt, topology, "orders.new", 0)
    response = _move(operator_client, topology, "orders.dead", mode="x-death-queue")
    assert "Moved 4 of 4 messages" in response.content.decode()
    wait_for_messages(mgmt, topology, "orders.new", 4)
    wait_for_messages(mgmt, topology, "orders.dead", 0)
    [first] = mgmt.peek(topology, "orders.new", count=1)
    assert first["properties"]["headers"]["x-death"][0]["reason"] == "rejected"


def test_it_reroutes_dead_letters_by_their_original_exchange_and_key(
    operator_client, mgmt, topology
):
    publish(mgmt, topology, "order.created", 2, exchange="orders")  # → orders.new and audit.log
    wait_for_messages(mgmt, topology, "audit.log", 2)
    _dead_letter(topology, "orders.new", 2)
    wait_for_messages(mgmt, topology, "orders.dead", 2)
    response = _move(operator_client, topology, "orders.dead", mode="x-death-route")
    assert "Moved 2 of 2 messages" in response.content.decode()
    # Routed again through exchange "orders" with key "order.created": both queues get them.
    wait_for_messages(mgmt, topology, "orders.new", 2)
    wait_for_messages(mgmt, topology, "audit.log", 4)
    wait_for_messages(mgmt, topology, "orders.dead", 0)
    entry = AuditEntry.objects.get(action="move_messages")
    assert "2 to orders/order.created" in entry.detail


def test_it_stops_without_losing_a_message_that_has_no_x_death(operator_client, mgmt, topology):
    publish(mgmt, topology, "orders.dead", 3)
    response = _move(operator_client, topology, "orders.dead", mode="x-death-queue")
    page = response.content.decode()
    assert "Moved 0 of 3 messages" in page
    assert "a message has no x-death header to go back by" in page
    wait_for_messages(mgmt, topology, "orders.dead", 3)
    assert [m["payload"] for m in mgmt.peek(topology, "orders.dead", count=3)] == ["m0", "m1", "m2"]
    assert AuditEntry.objects.get(action="move_messages").result == "failed"


def test_it_refuses_a_missing_target_and_keeps_every_message(operator_client, mgmt, topology):
    publish(mgmt, topology, "orders.dead", 2)
    response = _move(operator_client, topology, "orders.dead", mode="queue", target="nowhere")
    assert (
        "Nothing moved from &#x27;orders.dead&#x27;: 404 NOT_FOUND - no queue &#x27;nowhere&#x27;"
        in (response.content.decode())
    )
    wait_for_messages(mgmt, topology, "orders.dead", 2)
    response = _move(operator_client, topology, "orders.dead", mode="queue", target="orders.dead")
    assert "The target is the source queue itself." in response.content.decode()
    assert AuditEntry.objects.filter(action="move_messages", result="failed").count() == 2


def test_it_refuses_a_move_to_a_viewer(viewer_client, mgmt, topology):
    publish(mgmt, topology, "orders.dead", 1)
    response = viewer_client.post(
        reverse("queue_move", args=[topology, "orders.dead"]),
        {"mode": "queue", "target": "orders.unrouted"},
    )
    assert response.status_code == 403
    wait_for_messages(mgmt, topology, "orders.dead", 1)
    assert AuditEntry.objects.get(action="queue_move").result == "denied"


def test_it_puts_back_a_message_no_queue_takes_and_stops(mgmt, topology):
    """The lower level: a returned message is nacked back, never acked away."""
    publish(mgmt, topology, "order.created", 2, exchange="orders")
    _dead_letter(topology, "orders.new", 2)
    wait_for_messages(mgmt, topology, "orders.dead", 2)
    mgmt.delete_exchange(topology, "orders")  # the original route no longer exists
    mgmt.declare_exchange(topology, "orders", "topic")  # …or leads nowhere
    result = moving.move_messages(
        default_broker().amqp_url(), topology, "orders.dead", x_death="route"
    )
    assert (result.available, result.moved) == (2, 0)
    assert "routed key 'order.created' to no queue" in result.stopped
    wait_for_messages(mgmt, topology, "orders.dead", 2)


def test_it_never_moves_more_than_was_there_at_the_start(mgmt, topology):
    """A route that leads back into the source cannot make the move loop."""
    publish(mgmt, topology, "order.created", 2, exchange="orders")
    mgmt.bind(topology, "orders", "orders.dead", routing_key="order.created")
    _dead_letter(topology, "orders.new", 2)
    wait_for_messages(mgmt, topology, "orders.dead", 2)
    result = moving.move_messages(
        default_broker().amqp_url(), topology, "orders.dead", x_death="route"
    )
    assert (result.available, result.moved, result.stopped) == (2, 2, "")
    wait_for_messages(mgmt, topology, "orders.dead", 2)  # came back through the new binding
    wait_for_messages(mgmt, topology, "orders.new", 2)


def test_it_will_not_start_without_a_destination():
    with pytest.raises(moving.ConsoleMoveError):
        moving.move_messages("amqp://unused", "/", "q")
    with pytest.raises(moving.ConsoleMoveError):
        moving.move_messages("amqp://unused", "/", "q", target_queue="q")
