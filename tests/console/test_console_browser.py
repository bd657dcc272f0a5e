"""The broker console in headless Chromium: Queues → Queue → peek → Topology, for real."""

import json
import re

import pytest
from django.urls import reverse

from tests.conftest import ARTIFACTS, screenshot
from tests.console.helpers import HOSTILE_QUEUE, STATS_WAIT, publish, wait_for_messages
from tests.polling import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def busy_topology(mgmt, topology):
    body = json.dumps({"order": 1042, "customer": "<b>Ada</b>", "password": "hunter2"})
    properties = {
        "content_type": "application/json",
        "correlation_id": "order-1042",
        "headers": {"x-tenant": "<script>alert('tenant')</script>", "attempt": 1},
    }
    for _ in range(3):
        assert mgmt.publish(topology, "orders", "order.created", body, properties)["routed"]
    publish(mgmt, topology, HOSTILE_QUEUE, 2, body="<script>alert('body')</script> #")
    wait_for_messages(mgmt, topology, "orders.new", 3)
    wait_for_messages(mgmt, topology, HOSTILE_QUEUE, 2)
    return topology


def _watch_errors(page):
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_it_walks_queues_queue_peek_and_topology(page_as, superuser, live_server, busy_topology):
    vhost = busy_topology
    page = page_as(superuser)
    errors = _watch_errors(page)
    dialogs = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message) or dialog.dismiss())

    # Queues, sorted by total messages through the header link (htmx swap, URL kept).
    page.goto(f"{live_server.url}{reverse('queues')}?vhost={vhost}")
    page.wait_for_selector("#queue-list tbody tr")
    page.click("#queue-list th >> text=Total")
    page.wait_for_url(re.compile(r"sort=messages"))
    page.wait_for_function(
        "document.querySelector('#queue-list tbody tr td.name').innerText.trim() !== 'audit.log'"
    )
    first = page.locator("#queue-list tbody tr td.name a").first.inner_text()
    assert first in ("orders.new", "audit.log")  # 3 messages each
    assert "sort=messages" in page.url and "desc=1" in page.url
    names = page.locator("#queue-list tbody td.name a").all_inner_texts()
    assert HOSTILE_QUEUE in names  # shown as text, not run
    screenshot(page, "console-queues")

    # The auto-refresh keeps the sort.
    with page.expect_response(
        lambda r: r.request.headers.get("hx-request") == "true", timeout=9000
    ):
        pass
    assert page.locator("#queue-list th[aria-sort=descending]").inner_text().startswith("Total")

    # Queue page of the hostile queue, reached by its link.
    page.click(f"#queue-list td.name a >> text={HOSTILE_QUEUE}")
    page.wait_for_selector("h1.object-name")
    assert HOSTILE_QUEUE in page.locator("h1.object-name").inner_text()
    assert page.locator("[data-figure=messages]").inner_text() == "2"

    # Peek: bodies as text, never executed; the warning is there.
    assert "redelivered" in page.locator("#peek .banner-warning").inner_text()
    page.click("#peek-button")
    page.wait_for_selector("article.message")
    assert page.locator("article.message").count() == 2
    text_view = page.locator("article.message pre[data-view-panel=text]").first.inner_text()
    assert text_view == "<script>alert('body')</script> #0"
    screenshot(page, "console-queue-peek-text")

    # The JSON queue: pretty JSON view, masked password, headers as a table.
    page.goto(f"{live_server.url}{reverse('queue', args=[vhost, 'orders.new'])}")
    page.click("#peek-button")
    page.wait_for_selector("article.message")
    first_message = page.locator("article.message").first
    assert first_message.locator("[data-view-tab=json]").get_attribute("aria-selected") == "true"
    pretty = first_message.locator("pre[data-view-panel=json]").inner_text()
    assert '"customer": "<b>Ada</b>"' in pretty and "hunter2" not in pretty
    first_message.locator("[data-view-tab=hex]").click()
    assert first_message.locator("pre[data-view-panel=hex]").is_visible()
    assert not first_message.locator("pre[data-view-panel=json]").is_visible()
    first_message.locator("[data-view-tab=json]").click()
    assert (
        "<script>alert('tenant')</script>" in first_message.locator("table.kv").nth(1).inner_text()
    )
    screenshot(page, "console-queue-peek-json")
    first_message.screenshot(path=str(ARTIFACTS / "console-peek-message.png"))

    # A dangerous action asks first, naming the queue; dismissing keeps the messages.
    page.click("text=Purge messages")
    assert dialogs and "orders.new" in dialogs[-1]
    assert page.locator("[data-figure=messages]").inner_text() == "3"

    # Topology around this queue: the graph is drawn with its neighbours.
    page.click("text=Neighbourhood in topology")
    page.wait_for_selector("#graph[data-ready=true]")
    node_ids = page.evaluate("window.warrenGraph.nodes().map(n => n.id())")
    assert set(node_ids) == {"q:orders.new", "e:orders", "e:dlx"}
    edge_kinds = page.evaluate("window.warrenGraph.edges().map(e => e.data('kind'))")
    assert sorted(edge_kinds) == ["binding", "dead-letter"]
    assert "orders.new" in page.locator("#graph-selection").inner_text()
    screenshot(page, "console-topology-neighbourhood")

    page.goto(f"{live_server.url}{reverse('topology')}?vhost={vhost}")
    page.wait_for_selector("#graph[data-ready=true]")
    assert page.evaluate("window.warrenGraph.nodes().length") == 10
    page.wait_for_timeout(300)
    screenshot(page, "console-topology")
    assert errors == []


def test_it_publishes_from_the_exchange_page_and_shows_the_outcome(
    page_as, superuser, live_server, mgmt, topology
):
    page = page_as(superuser)
    errors = _watch_errors(page)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{live_server.url}{reverse('exchange', args=[topology, 'orders'])}")
    form = page.locator("form[action$='/publish']")
    form.locator("input[name=routing_key]").fill("order.created")
    form.locator("textarea[name=body]").fill('{"hello": "world"}')
    form.locator("button[type=submit]").click()
    page.wait_for_selector(".banner-success")
    assert "routed and confirmed" in page.locator(".banner-success").inner_text()
    wait_for_messages(mgmt, topology, "orders.new", 1)
    # Through orders an unknown key still lands, in its alternate exchange; dlx has none.
    page.goto(f"{live_server.url}{reverse('exchange', args=[topology, 'dlx'])}")
    form = page.locator("form[action$='/publish']")
    form.locator("input[name=routing_key]").fill("no.such.key")
    form.locator("button[type=submit]").click()
    page.wait_for_selector(".banner-warning >> text=Message returned")
    screenshot(page, "console-exchange-publish")
    assert errors == []


def test_it_shows_every_console_page_without_script_errors(
    page_as, superuser, live_server, mgmt, busy_topology
):
    from rabbit import amqp
    from rabbit.brokers import default_broker
    from rabbit.management_http import segment

    connection = amqp.blocking_connection(
        default_broker().amqp_url(), vhost=busy_topology, name="checkout <b>service</b>"
    )
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=10)
        channel.basic_consume("audit.log", lambda *a: None, consumer_tag="audit-reader")

        def listed():
            connection.process_data_events(time_limit=0.2)
            return mgmt.get(f"vhosts/{segment(busy_topology)}/channels") or []

        wait_until(
            listed,
            check=lambda channels: len(channels) == 1,
            what="the client's channel",
            **STATS_WAIT,
        )
        page = page_as(superuser)
        errors = _watch_errors(page)
        for name, shot in [
            ("connections", "console-connections"),
            ("channels", "console-channels"),
            ("exchanges", "console-exchanges"),
            ("vhosts", "console-vhosts"),
            ("brokers", "console-brokers"),
            ("audit_log", "console-audit-log"),
        ]:
            page.goto(f"{live_server.url}{reverse(name)}?vhost={busy_topology}")
            page.wait_for_selector("main h1")
            screenshot(page, shot)
        page.goto(f"{live_server.url}{reverse('connections')}?vhost={busy_topology}")
        page.click("td.name a >> text=checkout <b>service</b>")
        page.wait_for_selector("h1.object-name")
        assert "checkout <b>service</b>" in page.locator("h1.object-name").inner_text()
        screenshot(page, "console-connection")
        assert errors == []
    finally:
        connection.close()
