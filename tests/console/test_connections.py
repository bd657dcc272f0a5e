"""Connections and channels: client properties, prefetch, consumers, and closing one."""

import threading

import pytest
from django.urls import reverse

from console.models import AuditEntry
from rabbit import amqp
from rabbit.brokers import default_broker
from rabbit.management_http import BrokerNotFound
from tests.console.helpers import STATS_WAIT
from tests.polling import wait_until

CLIENT_NAME = "shop <b>checkout</b> ü"


@pytest.fixture
def client_connection(mgmt, topology):
    """A real client: one channel consuming orders.new (prefetch 3), one idle channel."""
    stop = threading.Event()
    ready = threading.Event()

    def run():
        connection = amqp.blocking_connection(
            default_broker().amqp_url(), vhost=topology, name=CLIENT_NAME
        )
        consuming = connection.channel()
        consuming.basic_qos(prefetch_count=3)
        consuming.basic_consume("orders.new", lambda *a: None, consumer_tag="checkout-1")
        connection.channel()
        ready.set()
        try:
            while not stop.is_set() and connection.is_open:
                connection.process_data_events(time_limit=0.2)
        except amqp.AMQPError:
            pass  # closed by the broker: what the close test wants
        if connection.is_open:
            connection.close()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    assert ready.wait(10)
    connection = wait_until(
        lambda: [
            c
            for c in mgmt.get(f"vhosts/{_segment(topology)}/connections") or []
            if (c.get("client_properties") or {}).get("connection_name") == CLIENT_NAME
        ],
        check=lambda found: len(found) == 1 and found[0].get("channels") == 2,
        what="the client connection with its two channels",
        **STATS_WAIT,
    )[0]
    yield connection["name"]
    stop.set()
    worker.join(10)


def _segment(name):
    from rabbit.management_http import segment

    return segment(name)


def test_it_lists_the_connection_with_its_client_properties(
    viewer_client, client_connection, topology
):
    page = viewer_client.get(reverse("connections"), {"vhost": topology}).content.decode()
    assert "shop &lt;b&gt;checkout&lt;/b&gt; ü" in page
    assert "<b>checkout" not in page
    assert "Warren" in page  # product, from the client properties
    assert reverse("connection", args=[client_connection]) in page
    row = page.split("shop &lt;b&gt;checkout", 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">2</td>' in row  # channels


def test_it_shows_a_connection_with_channels_and_consumers(
    viewer_client, client_connection, topology
):
    page = viewer_client.get(reverse("connection", args=[client_connection])).content.decode()
    assert "shop &lt;b&gt;checkout&lt;/b&gt; ü" in page
    assert "checkout-1" in page
    assert reverse("queue", args=[topology, "orders.new"]) in page
    channels = page.split("<h2>Channels", 1)[1].split("</table>", 1)[0]
    assert channels.count("<tr>") == 3  # header + two channels
    assert '<td class="num">3</td>' in channels  # prefetch of the consuming channel


def test_it_lists_channels_with_prefetch_and_consumers(viewer_client, client_connection, topology):
    page = wait_until(
        lambda: viewer_client.get(
            reverse("channels"), {"vhost": topology, "sort": "consumers", "desc": "1"}
        ).content.decode(),
        check=lambda html: "(1)" in html and "(2)" in html,
        what="both channels in the list",
        **STATS_WAIT,
    )
    first_row = page.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert "(1)" in first_row  # the consuming channel sorts first
    assert '<td class="num">3</td>' in first_row


def test_it_closes_a_connection_for_an_operator_and_audits_it(
    operator_client, viewer, mgmt, client_connection
):
    from django.test import Client

    viewer_client = Client()
    viewer_client.force_login(viewer)
    url = reverse("connection_close", args=[client_connection])
    assert viewer_client.post(url).status_code == 403
    assert mgmt.connection(client_connection)["name"] == client_connection
    response = operator_client.post(url, {"reason": "maintenance <now>"})
    assert response.status_code == 302
    wait_until(
        lambda: _exists(mgmt, client_connection),
        check=lambda exists: exists is False,
        what="the connection to close",
        **STATS_WAIT,
    )
    entry = AuditEntry.objects.filter(action="close_connection").latest("id")
    assert entry.result == "ok" and entry.detail == "reason: maintenance <now>"
    gone = viewer_client.get(reverse("connection", args=[client_connection])).content.decode()
    assert "This connection is closed" in gone


def _exists(mgmt, name):
    try:
        mgmt.connection(name)
    except BrokerNotFound:
        return False
    return True
