"""Peeking: messages stay in the queue, come back redelivered, bodies shown safely."""

import json

from django.urls import reverse

from console.models import AuditEntry
from tests.console.helpers import publish, wait_for_messages


def _peek(client, vhost, queue, count=5, htmx=False):
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.post(
        reverse("queue_peek", args=[vhost, queue]), {"count": count}, headers=headers
    )
    assert response.status_code == 200
    return response.content.decode()


def test_it_shows_messages_and_leaves_them_in_the_queue(viewer_client, mgmt, topology):
    body = json.dumps({"order": 42, "items": ["<b>tea</b>"]})
    properties = {
        "headers": {"x-tenant": "<script>alert(1)</script>", "token": "secret-1"},
        "content_type": "application/json",
        "correlation_id": "corr-<1>",
    }
    assert mgmt.publish(topology, "", "orders.new", body, properties)["routed"]
    wait_for_messages(mgmt, topology, "orders.new", 1)
    fragment = _peek(viewer_client, topology, "orders.new", htmx=True)
    assert fragment.lstrip().startswith('<div id="peek-results"')
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fragment
    assert "<script>alert(1)" not in fragment
    assert "corr-&lt;1&gt;" in fragment
    assert "&lt;b&gt;tea&lt;/b&gt;" in fragment and "<b>tea" not in fragment
    assert "secret-1" not in fragment and "••••••" in fragment
    assert "redelivered" not in fragment.split("<article", 1)[1].split("</header>")[0]
    # Still there, and now marked redelivered.
    wait_for_messages(mgmt, topology, "orders.new", 1)
    again = _peek(viewer_client, topology, "orders.new", htmx=True)
    assert '<span class="pill warn">redelivered</span>' in again


def test_it_pretty_prints_json_bodies(viewer_client, mgmt, topology):
    mgmt.publish(topology, "", "orders.new", json.dumps({"b": [1, 2], "a": "x"}))
    wait_for_messages(mgmt, topology, "orders.new", 1)
    page = _peek(viewer_client, topology, "orders.new", htmx=True)
    assert '<pre class="body" data-view-panel="json">{\n  &quot;b&quot;: [\n    1,' in page


def test_it_cuts_large_bodies_on_the_server_and_says_how_big_they_are(
    viewer_client, mgmt, topology, settings
):
    settings.WARREN_BODY_LIMIT = 4096
    mgmt.publish(topology, "", "orders.new", "x" * 300_000)
    wait_for_messages(mgmt, topology, "orders.new", 1)
    page = _peek(viewer_client, topology, "orders.new", htmx=True)
    assert "293.0 KiB" in page
    assert "cut: first 4.0 KiB shown" in page
    assert "x" * 4096 in page and "x" * 4097 not in page


def test_it_shows_binary_bodies_in_hex(viewer_client, mgmt, topology):
    mgmt.publish(topology, "", "orders.new", "//79/A==", payload_encoding="base64")
    wait_for_messages(mgmt, topology, "orders.new", 1)
    page = _peek(viewer_client, topology, "orders.new", htmx=True)
    assert "00000000  ff fe fd fc" in page
    assert 'data-view-tab="text" aria-selected="false" disabled' in page


def test_it_records_every_peek_in_the_audit_log(viewer_client, viewer, topology):
    _peek(viewer_client, topology, "orders.new", count=3)
    entry = AuditEntry.objects.get(action="peek")
    assert (entry.username, entry.result, entry.vhost) == (viewer.username, "ok", topology)
    assert entry.target == "queue orders.new"
    assert entry.detail == "0 of 3 asked"


def test_it_explains_a_peek_at_a_queue_that_is_gone(viewer_client, topology):
    page = _peek(viewer_client, topology, "never-was", htmx=True)
    assert "Peek failed: Queue &#x27;never-was&#x27; no longer exists" in page
    assert AuditEntry.objects.get(action="peek").result == "failed"


def test_it_renders_the_whole_page_with_results_without_htmx(viewer_client, mgmt, topology):
    publish(mgmt, topology, "orders.new", 2, body="plain ")
    wait_for_messages(mgmt, topology, "orders.new", 2)
    page = _peek(viewer_client, topology, "orders.new")
    assert "<html" in page
    assert page.count('<article class="message"') == 2
    assert "plain 0" in page and "plain 1" in page
