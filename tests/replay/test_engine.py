"""Replays against the real broker, through the plain engine functions."""

import json

import pytest

from replay import engine, jobs, spec, workers
from replay.models import ReplayItem, ReplayJob
from tests.replay.helpers import capture, operator_request

pytestmark = pytest.mark.django_db


def start(operator, **data):
    return jobs.create_job(operator_request(operator), spec.from_api(data))


def test_it_replays_a_captured_message_to_its_original_exchange(operator, broker):
    queue = broker.queue(exchange="orders", key="order.created")
    original = capture(
        broker.vhost,
        exchange="orders",
        routing_key="order.created",
        body=b'{"order": 1, "password": "hunter2"}',
        props={
            "content_type": "application/json",
            "message_id": "m-1",
            "headers": {"x-tenant": "acme", "token": "s3cret"},
        },
    )

    job = engine.run_job(start(operator, message_ids=[original.id]).id)

    assert (job.status, job.total, job.sent, job.confirmed, job.failed) == ("done", 1, 1, 1, 0)
    ((props, body),) = broker.take(queue)
    assert body == b'{"order": 1, "password": "hunter2"}'  # the original, not the mask
    assert props.headers["x-warren-replay-of"] == original.id
    assert props.headers["x-warren-replay-count"] == 1
    assert props.headers["token"] == "s3cret"
    assert (props.content_type, props.message_id) == ("application/json", "m-1")


def test_it_sends_a_redirected_replay_to_the_new_target(operator, broker):
    old_queue = broker.queue(exchange="orders", key="order.created")
    new_queue = broker.queue(exchange="audit", key="copy")
    original = capture(broker.vhost, exchange="orders", routing_key="order.created", body=b"A")

    job = engine.run_job(
        start(operator, message_ids=[original.id], exchange="audit", routing_key="copy").id
    )

    assert (job.status, job.confirmed) == ("done", 1)
    assert broker.depth(old_queue) == 0
    ((props, body),) = broker.take(new_queue)
    assert body == b"A"
    assert props.headers["x-warren-replay-of"] == original.id
    item = job.items.get()
    assert (item.exchange, item.routing_key, item.vhost) == ("audit", "copy", broker.vhost)


def test_it_sends_an_edited_body_and_headers(operator, broker):
    queue = broker.queue()
    original = capture(
        broker.vhost,
        routing_key=queue,
        body=b'{"n": 1}',
        props={"headers": {"x-keep": "yes", "x-drop": "no"}, "message_id": "m-7", "timestamp": 1},
    )

    job = engine.run_job(
        start(
            operator,
            message_ids=[original.id],
            body_base64="eyJuIjogMn0=",  # {"n": 2}
            headers={"x-drop": None, "x-added": "edit"},
            keep_message_id=False,
            keep_timestamp=False,
        ).id
    )

    assert job.status == "done"
    ((props, body),) = broker.take(queue)
    assert json.loads(body) == {"n": 2}
    assert props.headers["x-keep"] == "yes"
    assert props.headers["x-added"] == "edit"
    assert "x-drop" not in props.headers
    assert (props.message_id, props.timestamp) == (None, None)


def test_it_reports_an_unroutable_replay_as_failed_with_the_reason(operator, broker):
    broker.queue(exchange="orders", key="order.created")
    nowhere = capture(broker.vhost, exchange="orders", routing_key="order.lost", body=b"x")
    no_exchange = capture(broker.vhost, exchange="gone", routing_key="k", body=b"y")

    job = engine.run_job(start(operator, message_ids=[nowhere.id, no_exchange.id]).id)

    assert (job.status, job.sent, job.confirmed, job.failed) == ("done", 2, 0, 2)
    errors = dict(job.items.values_list("message_id", "error"))
    assert errors[nowhere.id].startswith("returned: 312 NO_ROUTE")
    assert "404" in errors[no_exchange.id] and "gone" in errors[no_exchange.id]


def test_it_counts_a_replay_of_a_replay(operator, broker):
    queue = broker.queue()
    first = capture(broker.vhost, routing_key=queue, body=b"1")
    again = capture(
        broker.vhost,
        routing_key=queue,
        body=b"1",
        props={"headers": {"x-warren-replay-of": first.id, "x-warren-replay-count": 1}},
    )
    assert again.replay_of == first.id

    engine.run_job(start(operator, message_ids=[again.id]).id)

    ((props, _),) = broker.take(queue)
    assert props.headers["x-warren-replay-of"] == again.id
    assert props.headers["x-warren-replay-count"] == 2


def test_it_refuses_cut_bodies_unless_allowed(operator, broker):
    queue = broker.queue()
    cut = capture(broker.vhost, routing_key=queue, body=b"0123456789", limit=4)
    assert cut.body_truncated

    with pytest.raises(jobs.Refusal) as refused:
        start(operator, message_ids=[cut.id])
    assert refused.value.status == 409
    assert "cut at" in refused.value.message

    job = engine.run_job(start(operator, message_ids=[cut.id], allow_truncated=True).id)
    ((props, body),) = broker.take(queue)
    assert body == b"0123"
    assert props.headers["x-warren-body-cut-at"] == 4
    assert "cut at 4 of 10 bytes" in job.items.get().error


def test_it_shows_what_a_dry_run_would_send_and_sends_nothing(operator, broker):
    queue = broker.queue()
    message = capture(broker.vhost, routing_key=queue, body=b"z", props={"user_id": "someone-else"})

    job = engine.run_job(start(operator, message_ids=[message.id], dry_run=True).id)

    assert (job.status, job.sent, job.confirmed, job.failed) == ("done", 0, 0, 0)
    item = job.items.get()
    assert item.state == ReplayItem.PLANNED
    assert (item.exchange, item.routing_key) == ("", queue)
    assert item.properties["headers"]["x-warren-replay-of"] == message.id
    assert "user_id" not in item.properties
    assert "user_id 'someone-else' dropped" in item.error
    assert broker.depth(queue) == 0


def test_it_asks_a_second_confirmation_above_the_threshold(operator, broker, settings):
    settings.WARREN_REPLAY_CONFIRM_ABOVE = 2
    queue = broker.queue()
    ids = [capture(broker.vhost, routing_key=queue, body=b"%d" % n).id for n in range(3)]

    with pytest.raises(jobs.Refusal) as refused:
        start(operator, message_ids=ids)

    assert (refused.value.status, refused.value.extra) == (409, {"total": 3, "confirm_above": 2})
    assert start(operator, message_ids=ids, confirm=True).total == 3
    assert ReplayJob.objects.count() == 1


def test_it_replays_to_another_broker_and_vhost(operator, broker, mgmt):
    from console.models import Broker as StoredBroker
    from rabbit.brokers import default_broker
    from tests.conftest import unique_name
    from tests.replay.helpers import Broker

    here = default_broker()
    StoredBroker.objects.create(
        slug="second",
        name="Second cluster",
        management_url=here.management_url,
        amqp_url=here.amqp_url_public,
        username=here.username,
        password=here.password,
    )
    other_vhost = unique_name("warren-test-vhost")
    mgmt.create_vhost(other_vhost)
    elsewhere = Broker(other_vhost)
    try:
        queue = elsewhere.queue()
        message = capture(broker.vhost, routing_key="orig", body=b"moved")
        data = {"message_ids": [message.id], "broker": "second", "vhost": other_vhost}
        job = engine.run_job(start(operator, routing_key=queue, **data).id)

        assert (job.status, job.confirmed) == ("done", 1)
        ((props, body),) = elsewhere.take(queue)
        assert body == b"moved"
        assert job.items.get().vhost == other_vhost
    finally:
        elsewhere.close()
        mgmt.delete_vhost(other_vhost)


def test_it_fails_an_item_whose_vhost_cannot_be_opened(operator, broker):
    message = capture(broker.vhost, routing_key="q", body=b"x")

    job = engine.run_job(start(operator, message_ids=[message.id], vhost="no-such-vhost").id)

    assert (job.status, job.sent, job.failed) == ("done", 0, 1)
    assert "cannot open vhost 'no-such-vhost'" in job.items.get().error


def test_it_marks_a_job_whose_heartbeat_stopped_as_interrupted(operator, broker):
    from datetime import timedelta

    from django.utils import timezone

    ids = [capture(broker.vhost, routing_key="q", body=b"%d" % n).id for n in range(3)]
    job = start(operator, message_ids=ids)
    items = list(job.items.order_by("position"))
    ReplayItem.objects.filter(id=items[0].id).update(state="confirmed", published=True)
    ReplayItem.objects.filter(id=items[1].id).update(state="sending", published=True)
    beat = timezone.now() - timedelta(seconds=workers.STALE_AFTER_S - 5)
    ReplayJob.objects.filter(id=job.id).update(
        status="running", heartbeat_at=beat, worker="another-host:4242", confirmed=0
    )

    assert workers.notice_interrupted() == 0  # not silent for long enough yet
    assert workers.notice_interrupted(now=beat + timedelta(seconds=workers.STALE_AFTER_S)) == 1

    job.refresh_from_db()
    assert (job.status, job.sent, job.confirmed, job.failed) == ("interrupted", 2, 1, 0)
    assert "another-host:4242" in job.errors[-1]
    assert "1 was in flight" in job.errors[-1]
    assert job.report["in_flight"] == 1
