"""Messages and Flows pages: search, one message, its body, the flow timeline."""

import re

import pytest

from tests.tracer.frames import frame, rpc_call
from tracer.store import storage
from tracer.times import now_us

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert('x')</script>"


@pytest.fixture
def stored():
    corr, events = rpc_call(at=0, body=b'{"password": "hunter2", "n": 30}')
    events.append(
        frame(
            "publish",
            10_000,
            exchange=HOSTILE,
            routing_key=HOSTILE,
            props={
                "headers": {
                    "Authorization": "Bearer sesame",
                    HOSTILE: HOSTILE,
                    "nested": {"token": "t0k", "ok": [1, 2]},
                }
            },
            body=HOSTILE.encode() + b"\xff\xfe",
        )
    )
    shift = now_us() - 60_000_000 - events[0].captured_us
    for event in events:
        event.captured_us += shift
    storage.store_batch(events, timeout_s=30)
    return corr, events


def _no_inline_code(html):
    assert " style=" not in html
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag, tag


def test_it_asks_anonymous_visitors_to_log_in(client, stored):
    _, events = stored
    for url in [
        "/messages/",
        "/flows/",
        f"/messages/{events[0].id}/",
        f"/messages/{events[0].id}/body",
        f"/flows/{events[0].id}/",
    ]:
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url


def test_it_refuses_users_without_a_role(client, roleless, stored):
    client.force_login(roleless)
    assert client.get("/messages/").status_code == 403


def test_it_lists_and_filters_messages(viewer_client, stored):
    corr, _ = stored
    html = viewer_client.get("/messages/").content.decode()
    assert corr in html and "Messages" in html
    assert 'href="/flows/"' in html  # the navigation shows the tracer pages
    _no_inline_code(html)
    filtered = viewer_client.get("/messages/?event=deliver").content.decode()
    assert filtered.count('<span class="pill ok">deliver</span>') == 2
    assert "publish</span>" not in filtered
    partial = viewer_client.get("/messages/?vhost=nowhere", HTTP_HX_REQUEST="true")
    text = partial.content.decode()
    assert "<html" not in text and "No captured message matches." in text
    bad = viewer_client.get("/messages/?since=tomorrow-ish").content.decode()
    assert "&#x27;since&#x27; must be an ISO 8601 time" in bad


def test_it_escapes_hostile_names_and_bodies(viewer_client, stored):
    _, events = stored
    hostile = events[-1]
    for url in ["/messages/", f"/messages/{hostile.id}/"]:
        html = viewer_client.get(url).content.decode()
        assert HOSTILE not in html
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
        _no_inline_code(html)


def test_it_shows_a_message_masked_with_its_body_as_text_json_and_hex(viewer_client, stored):
    _, events = stored
    html = viewer_client.get(f"/messages/{events[0].id}/").content.decode()
    assert "hunter2" not in html and "********" in html
    # JSON first, as a collapsible tree
    assert 'data-tab="json" aria-selected="true"' in html
    assert '<span class="json-key">&quot;n&quot;</span>: <span class="json-num">30</span>' in html
    assert "7b 22 70 61" in html  # the hex view of '{"pa'
    headers = viewer_client.get(f"/messages/{events[-1].id}/").content.decode()
    assert "sesame" not in headers and "t0k" not in headers
    assert "nested.ok" in headers and "[1,2]" in headers
    assert "(not UTF-8 text: see Hex)" in headers


def test_it_downloads_the_stored_body_masked(viewer_client, stored):
    _, events = stored
    response = viewer_client.get(f"/messages/{events[0].id}/body")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="message-{events[0].id}.bin"'
    assert response.content == b'{"password":"********","n":30}'
    assert viewer_client.get("/messages/987654321/body").status_code == 404


def test_it_lists_flows_and_draws_a_flow_to_scale(viewer_client, stored):
    corr, events = stored
    listing = viewer_client.get("/flows/?status=complete").content.decode()
    assert corr in listing and "5.00 ms" in listing
    assert corr not in viewer_client.get("/flows/?min_latency_ms=6").content.decode()
    html = viewer_client.get(f"/flows/{events[0].id}/").content.decode()
    _no_inline_code(html)
    widths = dict(re.findall(r'<rect class="(seg-\w+)" x="[\d.]+" y="45" width="([\d.]+)"', html))
    # queue wait 2 ms, service 3 ms, reply back 1.5 ms of 6.5 ms across 1000 units
    assert widths == {"seg-wait": "307.69", "seg-service": "461.54", "seg-back": "230.77"}
    assert html.count('href="/messages/') >= 4
    for role in ("request", "request delivered", "reply", "reply delivered"):
        assert f"<td>{role}</td>" in html
    assert viewer_client.get("/flows/123456789/").status_code == 404


def test_it_offers_replay_to_operators_only(client, viewer, operator, stored):
    _, events = stored
    request = events[0]
    pages = [f"/messages/{request.id}/", f"/flows/{request.id}/", "/messages/?vhost=x"]
    client.force_login(viewer)
    for url in pages:
        html = client.get(url).content.decode()
        assert "/replays/new" not in html, url
    client.force_login(operator)
    message_page = client.get(pages[0]).content.decode()
    assert f"/replays/new?message={request.id}" in message_page
    assert f"/conversation/?message={request.id}" in message_page
    flow_page = client.get(pages[1]).content.decode()
    assert f"/replays/new?flow={request.id}&amp;await_reply=1" in flow_page
    assert f"/conversation/?flow={request.id}" in flow_page
    assert "/replays/new?vhost=x" in client.get(pages[2]).content.decode()


def test_it_shows_tracing_per_node_on_the_messages_page(viewer_client, scratch_vhost, mgmt):
    from django.utils import timezone

    from tracer.models import TapSession

    now = timezone.now()
    TapSession.objects.create(
        pid=1,
        vhosts=[scratch_vhost],
        started_at=now,
        heartbeat_at=now,
        connected={scratch_vhost: True},
    )
    mgmt.set_tracing(scratch_vhost, True)
    node = mgmt.nodes()[0]["name"]
    html = viewer_client.get("/messages/").content.decode()
    assert f"{node} on" in html
    mgmt.set_tracing(scratch_vhost, False)
