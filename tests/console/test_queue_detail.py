"""One queue: figures, bindings, consumers, dead-letter route, history, and gone queues."""

import threading

from django.urls import reverse

from rabbit import amqp
from rabbit.brokers import default_broker
from tests.console.helpers import (
    HOSTILE_EXCHANGE,
    HOSTILE_KEY,
    HOSTILE_QUEUE,
    STATS_WAIT,
    publish,
    wait_for_messages,
)
from tests.polling import wait_until


def _page(client, vhost, name, path_suffix="", **headers):
    response = client.get(reverse("queue", args=[vhost, name]) + path_suffix, headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def test_it_shows_figures_bindings_and_where_dead_letters_go(viewer_client, mgmt, topology):
    publish(mgmt, topology, "orders.new", 4)
    wait_for_messages(mgmt, topology, "orders.new", 4)
    page = _page(viewer_client, topology, "orders.new")
    assert 'data-figure="ready">4<' in page
    assert 'data-figure="messages">4<' in page
    assert ">order.created<" in page  # the binding from exchange orders
    assert reverse("exchange", args=[topology, "orders"]) in page
    assert "go to exchange" in page and ">dlx<" in page and "<code>orders.dead</code>" in page
    assert reverse("queue", args=[topology, "orders.dead"]) in page  # the route, resolved
    assert "dropped" not in page
    assert "x-dead-letter-exchange" in page


def test_it_escapes_a_hostile_queue_its_exchange_and_binding_key(viewer_client, topology):
    page = _page(viewer_client, topology, HOSTILE_QUEUE)
    assert "q &lt;script&gt;alert(&quot;q&quot;)&lt;/script&gt; / 50% ü" in page
    assert "ex &lt;b&gt;&quot;x&quot;&lt;/b&gt; / 100% é" in page
    assert "k.&lt;i&gt;.#" in page
    assert "<b>" not in page.split("<main", 1)[1] and "<i>" not in page
    assert reverse("exchange", args=[topology, HOSTILE_EXCHANGE]) in page
    assert HOSTILE_KEY  # the binding's key is the one the fixture made


def test_it_warns_when_dead_letters_would_be_dropped(viewer_client, mgmt, scratch_vhost):
    mgmt.declare_queue(scratch_vhost, "lost", arguments={"x-dead-letter-exchange": "nowhere"})
    page = _page(viewer_client, scratch_vhost, "lost")
    assert "Exchange “nowhere” does not exist" in page
    assert "<strong>dropped</strong>" in page


def test_it_lists_consumers_with_prefetch_and_ack_mode(viewer_client, mgmt, topology):
    broker = default_broker()
    ready = threading.Event()
    stop = threading.Event()

    def consume():
        connection = amqp.blocking_connection(
            broker.amqp_url(), vhost=topology, name="test consumer <b>x</b>"
        )
        channel = connection.channel()
        channel.basic_qos(prefetch_count=7)
        channel.basic_consume("orders.new", lambda *a: None, auto_ack=False, consumer_tag="tag-1")
        ready.set()
        while not stop.is_set():
            connection.process_data_events(time_limit=0.2)
        connection.close()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    try:
        assert ready.wait(10)
        page = wait_until(
            lambda: _page(viewer_client, topology, "orders.new"),
            # The broker fills in the consumer's channel details a moment later.
            check=lambda html: (
                "tag-1" in html and 'data-figure="consumers">1<' in html and "127.0.0.1:" in html
            ),
            what="the consumer, its connection and the consumer count on the queue page",
            **STATS_WAIT,
        )
        assert 'data-figure="consumers">1<' in page
        assert '<td class="num">7</td>' in page
        assert "manual ack" in page
        assert "127.0.0.1:" in page  # the consumer's connection and peer
    finally:
        stop.set()
        worker.join(10)


def test_it_draws_the_history_once_the_broker_has_samples(viewer_client, mgmt, topology):
    publish(mgmt, topology, "orders.new", 2)
    wait_until(
        lambda: mgmt.queue(topology, "orders.new", lengths_age=600),
        # samples come newest first: two of them, the newest with both messages
        check=lambda raw: (
            [
                sample["sample"]
                for sample in (raw.get("messages_ready_details") or {}).get("samples") or []
            ][:1]
            == [2]
            and len(raw["messages_ready_details"]["samples"]) >= 2
        ),
        what="two samples of the queue length, the newest with both messages",
        **STATS_WAIT,
    )
    page = _page(viewer_client, topology, "orders.new", path_suffix="?range=1h")
    assert "Over time, last hour" in page
    assert 'aria-current="true" title="Last hour">1h</a>' in page
    assert 'data-chart="queued"' in page and 'data-chart="rates"' in page
    charts_url = reverse("queue_charts", args=[topology, "orders.new"])
    answer = viewer_client.get(charts_url + "?range=10m").json()
    ready = answer["charts"]["queued"]["series"][0]
    assert ready["label"] == "ready" and ready["last"] == 2.0


def test_it_refreshes_its_figures_for_htmx(viewer_client, topology):
    fragment = _page(viewer_client, topology, "orders.new", **{"HX-Request": "true"})
    assert fragment.lstrip().startswith('<div id="queue-figures"')
    assert "<html" not in fragment


def test_it_says_so_when_the_queue_is_gone(viewer_client, mgmt, topology):
    mgmt.delete_queue(topology, "orders.unrouted")
    page = _page(viewer_client, topology, "orders.unrouted")
    assert "Queue “orders.unrouted” does not exist" in page
    fragment = _page(viewer_client, topology, "orders.unrouted", **{"HX-Request": "true"})
    assert "no longer exists" in fragment


def test_it_shows_no_operator_forms_to_viewers(viewer_client, topology):
    page = _page(viewer_client, topology, "orders.new")
    main = page.split("<main", 1)[1]
    assert "Operator actions" not in main, main[:3000]
    assert "Purge messages" not in main, main[:3000]
    assert 'id="peek-button"' in main, main[:3000]


def test_it_shows_operator_forms_with_confirmations_naming_the_queue(operator_client, topology):
    page = _page(operator_client, topology, HOSTILE_QUEUE)
    assert "Operator actions" in page
    assert (
        "data-confirm=\"Purge queue 'q &lt;script&gt;alert(&quot;q&quot;)&lt;/script&gt; / 50% ü'"
        in page
    )
    assert "data-confirm=\"Delete queue 'q &lt;script&gt;" in page
