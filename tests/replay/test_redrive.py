"""Dead-letter redrive: each message goes back where its x-death header says it came from."""

import pytest

from replay import engine, jobs, spec
from tests.polling import wait_until
from tests.replay.helpers import capture, operator_request

pytestmark = pytest.mark.django_db


def dead_letter_setup(broker):
    broker.channel.exchange_declare("orders", exchange_type="direct")
    dead = broker.queue("orders.dead")
    work = broker.queue(
        "orders.work",
        exchange="orders",
        key="order.created",
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead},
    )
    return work, dead


def reject_one(broker, work, body):
    broker.publish("orders", "order.created", body, headers={"x-tenant": "acme"})
    method, _, _ = wait_until(
        lambda: broker.channel.basic_get(work),
        check=lambda got: got[0] is not None,
        timeout=5,
        what=f"the message in {work}",
    )
    broker.channel.basic_reject(method.delivery_tag, requeue=False)


def redrive(operator, **dead_letters):
    data = {"dead_letters": dead_letters}
    job = jobs.create_job(operator_request(operator), spec.from_api(data))
    return engine.run_job(job.id)


def test_it_sends_captured_dead_letters_back_to_the_queue_they_died_in(operator, broker):
    work, dead = dead_letter_setup(broker)
    reject_one(broker, work, b"order-1")
    assert broker.wait_depth(dead, 1) == 1
    ((props, body),) = broker.take(dead)
    assert props.headers["x-death"][0]["queue"] == work
    # What the tap would have stored for that delivery from the dead-letter queue.
    delivered = capture(
        broker.vhost,
        event="deliver",
        queue=dead,
        exchange="",
        routing_key=dead,
        body=body,
        props={"headers": props.headers},
    )

    job = redrive(operator, vhost=broker.vhost, queue=dead, how="queue")

    assert (job.kind, job.status, job.confirmed) == ("redrive", "done", 1)
    ((props, body),) = broker.take(work)
    assert body == b"order-1"
    assert props.headers["x-warren-replay-of"] == delivered.id
    assert props.headers["x-tenant"] == "acme"
    assert (job.items.get().exchange, job.items.get().routing_key) == ("", work)


def test_it_redrives_peeked_dead_letters_through_their_first_route(operator, broker):
    work, dead = dead_letter_setup(broker)
    reject_one(broker, work, b"order-2")
    assert broker.wait_depth(dead, 1) == 1

    job = redrive(operator, vhost=broker.vhost, queue=dead, **{"from": "peek"}, how="route")

    assert (job.status, job.total, job.confirmed) == ("done", 1, 1)
    item = job.items.get()
    assert (item.exchange, item.routing_key) == ("orders", "order.created")
    ((props, body),) = broker.take(work)
    assert body == b"order-2"
    assert "x-warren-replay-of" not in props.headers  # a peeked copy has no captured id
    assert props.headers["x-warren-replay-count"] == 1
    assert broker.depth(dead) == 1  # peeking leaves it there: redrive sent a copy


def test_it_refuses_a_message_without_x_death(operator, broker):
    _, dead = dead_letter_setup(broker)
    capture(broker.vhost, event="deliver", queue=dead, routing_key=dead, body=b"plain")

    job = redrive(operator, vhost=broker.vhost, queue=dead, how="queue")

    assert (job.status, job.sent, job.failed) == ("done", 0, 1)
    assert job.items.get().error == "it has no x-death header to go back by"
