"""Creating queues (classic, quorum, stream) and exchanges through the pages, checked on
the broker afterwards; bad input refused in words with nothing created; all audited."""

import pytest
from django.urls import reverse

from rabbit.management_http import BrokerNotFound
from tests.admin.conftest import last_entry


def _create_queue(client, vhost, **fields):
    data = {"vhost": vhost, "queue_type": "classic", "durable": "on", **fields}
    return client.post(reverse("queue_new"), data)


def test_it_creates_a_classic_queue_with_its_arguments(
    operator_client, operator, mgmt, scratch_vhost
):
    response = _create_queue(
        operator_client,
        scratch_vhost,
        name="orders.in",
        message_ttl="60000",
        max_length="500",
        overflow="reject-publish",
        dead_letter_exchange="dlx",
        dead_letter_routing_key="orders.dead",
        single_active_consumer="on",
        extra_arguments='{"x-queue-mode": "lazy"}',
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("queue", args=[scratch_vhost, "orders.in"])
    queue = mgmt.queue(scratch_vhost, "orders.in")
    assert queue["durable"] is True and queue["type"] == "classic"
    assert queue["arguments"] == {
        "x-message-ttl": 60000,
        "x-max-length": 500,
        "x-overflow": "reject-publish",
        "x-dead-letter-exchange": "dlx",
        "x-dead-letter-routing-key": "orders.dead",
        "x-single-active-consumer": True,
        "x-queue-mode": "lazy",
    }
    entry = last_entry("create_queue")
    assert (entry.username, entry.result, entry.vhost, entry.target) == (
        operator.username,
        "ok",
        scratch_vhost,
        "queue orders.in",
    )


def test_it_creates_a_quorum_queue_with_a_delivery_limit(operator_client, mgmt, scratch_vhost):
    response = _create_queue(
        operator_client, scratch_vhost, name="jobs", queue_type="quorum", delivery_limit="3"
    )
    assert response.status_code == 302
    queue = mgmt.queue(scratch_vhost, "jobs")
    assert queue["type"] == "quorum"
    assert queue["arguments"] == {"x-queue-type": "quorum", "x-delivery-limit": 3}


def test_it_creates_a_stream_with_its_retention(operator_client, mgmt, scratch_vhost):
    response = _create_queue(
        operator_client,
        scratch_vhost,
        name="events",
        queue_type="stream",
        max_age="7D",
        max_length_bytes="1000000000",
        stream_max_segment_size_bytes="50000000",
    )
    assert response.status_code == 302
    queue = mgmt.queue(scratch_vhost, "events")
    assert queue["type"] == "stream"
    assert queue["arguments"] == {
        "x-queue-type": "stream",
        "x-max-age": "7D",
        "x-max-length-bytes": 1000000000,
        "x-stream-max-segment-size-bytes": 50000000,
    }


def test_it_refuses_arguments_the_type_does_not_take(operator_client, mgmt, scratch_vhost):
    response = _create_queue(
        operator_client,
        scratch_vhost,
        name="bad-stream",
        queue_type="stream",
        message_ttl="1000",
        max_age="soon",
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Message TTL (ms): not for a stream queue (only classic, quorum)." in page
    assert "Max age: “soon” is not a number and a unit" in page
    assert 'value="bad-stream"' in page  # what was typed is kept
    with pytest.raises(BrokerNotFound):
        mgmt.queue(scratch_vhost, "bad-stream")
    entry = last_entry("create_queue")
    assert entry.result == "failed" and "not for a stream queue" in entry.detail


def test_it_refuses_a_name_already_taken(operator_client, mgmt, scratch_vhost):
    mgmt.declare_queue(scratch_vhost, "taken", arguments={"x-max-length": 1})
    response = _create_queue(operator_client, scratch_vhost, name="taken", max_length="9")
    assert response.status_code == 400
    assert "already has a queue “taken”" in response.content.decode()
    assert mgmt.queue(scratch_vhost, "taken")["arguments"] == {"x-max-length": 1}


def test_it_refuses_creating_to_a_viewer(viewer_client, mgmt, scratch_vhost):
    response = _create_queue(viewer_client, scratch_vhost, name="nope")
    assert response.status_code == 403
    with pytest.raises(BrokerNotFound):
        mgmt.queue(scratch_vhost, "nope")
    assert last_entry("queue_new").result == "denied"


def test_it_offers_every_exchange_type_the_broker_lists(operator_client, mgmt, scratch_vhost):
    page = operator_client.get(reverse("exchange_new") + f"?vhost={scratch_vhost}")
    assert page.status_code == 200
    listed = [t["name"] for t in mgmt.overview()["exchange_types"]]
    html = page.content.decode()
    for name in listed:
        assert f'<option value="{name}"' in html
    assert f'<option value="{scratch_vhost}" selected>' in html


def test_it_creates_an_exchange_with_every_option(operator_client, mgmt, scratch_vhost):
    response = operator_client.post(
        reverse("exchange_new"),
        {
            "vhost": scratch_vhost,
            "name": "events",
            "type": "topic",
            "auto_delete": "on",
            "internal": "on",
            "alternate_exchange": "unrouted",
            "extra_arguments": '{"x-note": "made in Warren"}',
        },
    )
    assert response.status_code == 302
    exchange = mgmt.exchange(scratch_vhost, "events")
    assert (
        exchange["type"],
        exchange["durable"],
        exchange["auto_delete"],
        exchange["internal"],
    ) == (
        "topic",
        False,
        True,
        True,
    )
    assert exchange["arguments"] == {"alternate-exchange": "unrouted", "x-note": "made in Warren"}
    assert last_entry("create_exchange").result == "ok"


def test_it_refuses_a_bad_exchange(operator_client, mgmt, scratch_vhost):
    response = operator_client.post(
        reverse("exchange_new"),
        {"vhost": scratch_vhost, "name": "amq.mine", "type": "no-such-type", "durable": "on"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Names starting with “amq.” are reserved for the broker." in page
    assert "Select a valid choice. no-such-type is not one of the available choices." in page
    assert last_entry("create_exchange").result == "failed"


def test_it_links_the_forms_from_the_lists_for_operators_only(
    operator_client, viewer, client, scratch_vhost
):
    assert reverse("queue_new") in operator_client.get(reverse("queues")).content.decode()
    assert reverse("exchange_new") in operator_client.get(reverse("exchanges")).content.decode()
    client.force_login(viewer)
    assert reverse("queue_new") not in client.get(reverse("queues")).content.decode()
