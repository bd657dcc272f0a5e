"""A scratch vhost with queues, exchanges and bindings, hostile names included."""

import uuid

import pytest

from tests.console.helpers import HOSTILE_EXCHANGE, HOSTILE_KEY, HOSTILE_QUEUE


@pytest.fixture
def hostile_vhost(mgmt):
    """A vhost whose own name needs escaping everywhere: `/`, `%`, spaces, markup, unicode."""
    name = f"warren-test-vh <script>x</script> /50% ü {uuid.uuid4().hex[:8]}"
    mgmt.create_vhost(name, description="Warren test vhost with a hostile name")
    yield name
    mgmt.delete_vhost(name)


@pytest.fixture
def topology(mgmt, scratch_vhost):
    """Orders flowing through a topic exchange, a dead-letter exchange and queue, an
    alternate exchange, an exchange-to-exchange binding and a hostile queue."""
    v = scratch_vhost
    mgmt.declare_exchange(v, "orders", "topic", arguments={"alternate-exchange": "unrouted"})
    mgmt.declare_exchange(v, "unrouted", "fanout")
    mgmt.declare_exchange(v, "dlx", "direct")
    mgmt.declare_exchange(v, "audit", "fanout")
    mgmt.declare_exchange(v, HOSTILE_EXCHANGE, "topic")
    mgmt.declare_queue(
        v,
        "orders.new",
        arguments={"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "orders.dead"},
    )
    mgmt.declare_queue(v, "orders.dead")
    mgmt.declare_queue(v, "orders.unrouted")
    mgmt.declare_queue(v, "audit.log", arguments={"x-max-length": 1000, "x-message-ttl": 60000})
    mgmt.declare_queue(v, HOSTILE_QUEUE)
    mgmt.bind(v, "orders", "orders.new", routing_key="order.created")
    mgmt.bind(v, "orders", "audit", destination_type="e", routing_key="#")
    mgmt.bind(v, "audit", "audit.log")
    mgmt.bind(v, "unrouted", "orders.unrouted")
    mgmt.bind(v, "dlx", "orders.dead", routing_key="orders.dead")
    mgmt.bind(v, HOSTILE_EXCHANGE, HOSTILE_QUEUE, routing_key=HOSTILE_KEY)
    return v
