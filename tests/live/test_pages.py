"""Live flows, live messages, Latency and the sequence view as a viewer sees them."""

import re

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.conftest import unique_name
from tests.live.events import event, rpc_call
from tracer.models import Flow
from tracer.store import storage
from tracer.times import now_us


def _store(*calls):
    events = [item for call in calls for item in call]
    return storage.store_batch(events)


@pytest.mark.django_db
def test_it_shows_the_newest_flows_with_their_correlation_ids(viewer_client):
    vhost = unique_name("live")
    corr_a, call_a = rpc_call(vhost, latency_ms=12.5)
    corr_b, call_b = rpc_call(vhost, routing_key="weather.ohio", exchange="amq.topic", queue="ohio")
    _store(call_a, call_b)

    page = viewer_client.get(reverse("live_flows"), {"vhost": vhost})

    assert page.status_code == 200
    text = page.content.decode()
    assert corr_a in text and corr_b in text
    assert "amq.topic / weather.ohio" in text
    assert "12.5 ms" in text
    flow = Flow.objects.get(correlation_id=corr_a)
    assert f'id="flow-{flow.id}"' in text
    assert f'href="{reverse("flow", args=[flow.id])}"' in text
    assert 'data-ws="/ws/flows/"' in text


@pytest.mark.django_db
def test_it_filters_the_first_rows_like_the_stream_does(viewer_client):
    vhost = unique_name("live")
    corr_fast, fast = rpc_call(vhost, latency_ms=2)
    corr_slow, slow = rpc_call(vhost, latency_ms=1500)
    corr_topic, topic = rpc_call(vhost, routing_key="weather.ohio", exchange="amq.topic")
    _store(fast, slow, topic)

    slow_only = viewer_client.get(
        reverse("live_flows"), {"vhost": vhost, "status": "slow", "slow_ms": "1000"}
    ).content.decode()
    assert corr_slow in slow_only and corr_fast not in slow_only and corr_topic not in slow_only

    by_pattern = viewer_client.get(
        reverse("live_flows"), {"vhost": vhost, "routing_key": "*.ohio"}
    ).content.decode()
    assert corr_topic in by_pattern and corr_fast not in by_pattern


@pytest.mark.django_db
def test_it_answers_htmx_with_the_rows_alone(viewer_client):
    vhost = unique_name("live")
    corr, call = rpc_call(vhost)
    _store(call)

    fragment = viewer_client.get(reverse("live_flows"), {"vhost": vhost}, HTTP_HX_REQUEST="true")

    text = fragment.content.decode()
    assert corr in text
    assert "<html" not in text and "<tbody" not in text
    assert text.strip().startswith('<tr id="flow-')


@pytest.mark.django_db
def test_it_says_what_is_wrong_with_a_filter(viewer_client):
    page = viewer_client.get(reverse("live_flows"), {"status": "bogus"})
    assert page.status_code == 200
    assert "Unknown status" in page.content.decode()


@pytest.mark.django_db
def test_it_refuses_the_live_pages_to_anonymous_and_roleless_users(client, roleless):
    for name in ("live_flows", "live_messages", "latency", "conversation"):
        assert client.get(reverse(name)).status_code == 302
    client.force_login(roleless)
    for name in ("live_flows", "live_messages", "latency", "conversation"):
        assert client.get(reverse(name)).status_code == 403
    assert client.get(reverse("latency_data")).status_code == 403


@pytest.mark.django_db
@override_settings(WARREN_MASKED_FIELDS=["password"])
def test_it_masks_message_rows_and_escapes_hostile_names(viewer_client):
    vhost = unique_name("live")
    hostile = '<script>alert("x")</script> q/%20 ü'
    publish = event(
        "publish",
        now_us() - 1000,
        vhost,
        "",
        hostile,
        props={"headers": {"password": "hunter2"}},
        body=b'{"user": "ann", "password": "hunter2"}',
    )
    storage.store_batch([publish])

    page = viewer_client.get(reverse("live_messages"), {"vhost": vhost})

    text = page.content.decode()
    assert "hunter2" not in text
    assert "********" in text
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; q/%20 ü" in text
    assert 'data-ws="/ws/messages/"' in text


@pytest.mark.django_db
def test_it_shows_percentiles_per_service_on_the_latency_page(viewer_client):
    vhost = unique_name("lat")
    calls = [rpc_call(vhost, routing_key="svc.fast", latency_ms=ms)[1] for ms in (10, 20, 30, 40)]
    calls += [rpc_call(vhost, routing_key="svc.slow", latency_ms=ms)[1] for ms in (400, 800)]
    _, unanswered = rpc_call(
        vhost, routing_key="svc.slow", answered=False, start_us=now_us() - 120_000_000
    )
    _store(*calls, unanswered)
    storage.sweep_timeouts(timeout_s=30)

    page = viewer_client.get(reverse("latency"), {"vhost": vhost, "window": "15m"})

    assert page.status_code == 200
    text = page.content.decode()
    rows = re.findall(r'<tr[^>]*data-service="([^"]+)"', text)
    assert rows == ["svc.slow", "svc.fast"]  # slowest p95 first
    fast_row = text[text.index('data-service="svc.fast"') :].split("</tr>")[0]
    assert "25.0 ms" in fast_row  # p50 of 10, 20, 30, 40 (interpolated)
    slow_row = text[text.index('data-service="svc.slow"') :].split("</tr>")[0]
    assert 'class="num warn-text">1<' in slow_row  # one timeout
    assert "status=timeout" in slow_row and "min_latency_ms=" in slow_row
    assert "uplot-1.6.32.min.js" in text

    partial = viewer_client.get(
        reverse("latency"), {"vhost": vhost, "window": "15m"}, HTTP_HX_REQUEST="true"
    )
    assert partial.content.decode().lstrip().startswith('<section id="service-table"')


@pytest.mark.django_db
def test_it_serves_histogram_and_series_as_json(viewer_client):
    vhost = unique_name("lat")
    start = now_us() - 3_000_000
    calls = [rpc_call(vhost, latency_ms=ms, start_us=start)[1] for ms in (5, 5, 50, 500)]
    _store(*calls)

    data = viewer_client.get(
        reverse("latency_data"), {"vhost": vhost, "window": "5m", "service": "rpc_queue"}
    ).json()

    assert sum(data["histogram"]["counts"]) == 4
    assert data["histogram"]["edges_ms"] == sorted(data["histogram"]["edges_ms"])
    assert sum(data["series"]["calls_per_s"]) * data["series"]["step_s"] == pytest.approx(4)
    # All four were requested in the same step: its percentiles are numpy's.
    assert [p for p in data["series"]["p50"] if p is not None] == [pytest.approx(27.5)]
    assert [p for p in data["series"]["p99"] if p is not None] == [pytest.approx(486.5)]


@pytest.mark.django_db
def test_it_draws_an_rpc_call_as_a_sequence(viewer_client):
    vhost = unique_name("seq")
    corr, call = rpc_call(vhost, latency_ms=8)
    _store(call)
    flow = Flow.objects.get(correlation_id=corr)

    page = viewer_client.get(reverse("conversation"), {"flow": flow.id})

    assert page.status_code == 200
    text = page.content.decode()
    assert "<svg" in text and 'class="arrow arrow-request"' in text
    assert 'class="arrow arrow-reply"' in text
    assert text.count('class="arrow arrow-deliver"') == 2
    for lane in ("demo client", "(default)", "rpc_queue", "demo server", "amq.gen-reply"):
        assert f">{lane}<" in text
    assert " style=" not in text


@pytest.mark.django_db
def test_it_says_when_there_is_no_such_conversation(viewer_client):
    page = viewer_client.get(reverse("conversation"), {"flow": 987654321})
    assert page.status_code == 404
    assert "There is no flow 987654321" in page.content.decode()


@pytest.mark.django_db
def test_it_never_writes_a_live_figure_more_precise_than_the_tap(viewer_client):
    vhost = unique_name("live")
    corr, call = rpc_call(vhost, latency_ms=0.1)  # the request waits 0.02 ms for its server
    _store(call)

    text = viewer_client.get(reverse("live_flows"), {"vhost": vhost}).content.decode()

    row = re.search(rf'<tr id="flow-\d+".*?{corr}.*?</tr>', text, re.S).group(0)
    assert "&lt; 0.05 ms" in row  # the queue wait, below what the tap can tell apart
    assert "0.02 ms" not in row and "0.00 ms" not in row
