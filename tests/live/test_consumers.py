"""/ws/flows/ and /ws/messages/ on the real ASGI application, Redis and database."""

import asyncio
import json
import re
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client, override_settings

from console.asgi import application
from tests.conftest import unique_name
from tests.live.conftest import run_async
from tests.live.events import rpc_call
from tracer.live import publish as live
from tracer.live import subscriptions
from tracer.live.consumers import BURST
from tracer.store import storage

ORIGIN = (b"origin", b"http://127.0.0.1")
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("roles")]


def _cookie(user):
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode())


def _socket(path, *headers):
    return WebsocketCommunicator(application, path, headers=[(b"host", b"127.0.0.1"), *headers])


class Publisher:
    """The tap's side: store calls, publish them live (as tracer.tap.process does)."""

    def __init__(self, broker="default"):
        self.sender = live.LivePublisher(broker=broker, min_interval_s=0.05)

    def calls(self, *calls):
        events = [event for _, call in calls for event in call]
        result = storage.store_batch(events)
        self.sender.publish_batch(events, result.flows)
        return result

    def close(self):
        self.sender.close()


@pytest.fixture
def tap():
    publishers = []

    def make(broker="default"):
        publisher = Publisher(broker)
        publishers.append(publisher)
        return publisher

    yield make
    for publisher in publishers:
        publisher.close()


async def _connect(path, *headers):
    socket = _socket(path, *headers)
    connected, code = await socket.connect(timeout=5)
    return socket, connected, code


async def _hello(socket):
    message = await socket.receive_json_from(timeout=5)
    assert message["type"] == "subscribed"
    return message


async def _gather(socket, until, timeout=5.0):
    """Messages from the socket until `until(messages)` holds or `timeout` passes."""
    messages = []
    deadline = time.monotonic() + timeout
    while not until(messages):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        # Not receive_json_from: its timeout would cancel the consumer itself.
        try:
            output = await asyncio.wait_for(socket.output_queue.get(), remaining)
        except TimeoutError:
            break
        if output["type"] != "websocket.send":
            messages.append({"type": output["type"], "code": output.get("code")})
            break
        messages.append(json.loads(output["text"]))
    return messages


def _html(messages):
    return "".join(m["html"] for m in messages if m["type"] == "rows")


def _has(*needles):
    return lambda messages: all(needle in _html(messages) for needle in needles)


def test_it_refuses_anonymous_users():
    async def scenario():
        socket, connected, _ = await _connect("/ws/flows/", ORIGIN)
        assert not connected
        await socket.disconnect()

    run_async(scenario)


def test_it_refuses_another_origin_even_with_a_session(viewer):
    cookie = _cookie(viewer)

    async def scenario():
        socket, connected, _ = await _connect(
            "/ws/flows/", (b"origin", b"http://evil.example"), cookie
        )
        assert not connected
        await socket.disconnect()
        socket, connected, _ = await _connect("/ws/flows/", ORIGIN, cookie)
        assert connected
        await socket.disconnect()

    run_async(scenario)


def test_it_refuses_users_without_a_role(roleless):
    cookie = _cookie(roleless)

    async def scenario():
        for path in ("/ws/flows/", "/ws/messages/"):
            socket, connected, _ = await _connect(path, ORIGIN, cookie)
            assert not connected
            await socket.disconnect()

    run_async(scenario)


def test_a_filtered_subscription_gets_only_matching_flows_and_changes_without_reconnecting(
    viewer, tap
):
    cookie = _cookie(viewer)
    vhost, other = unique_name("ws"), unique_name("ws-other")
    publisher = tap()
    wanted = rpc_call(vhost, "weather.ohio", "amq.topic", queue="ohio", latency_ms=500)
    fast = rpc_call(vhost, "weather.ohio", "amq.topic", queue="ohio", latency_ms=5)
    wrong_key = rpc_call(vhost, "news.ohio", "amq.topic", queue="ohio", latency_ms=500)
    elsewhere = rpc_call(other, "weather.ohio", "amq.topic", queue="ohio", latency_ms=500)
    later = rpc_call(vhost, "rpc_queue", latency_ms=1)

    async def scenario():
        socket, connected, _ = await _connect("/ws/flows/", ORIGIN, cookie)
        assert connected
        await _hello(socket)
        await socket.send_json_to(
            {
                "type": "subscribe",
                "filters": {
                    "vhost": vhost,
                    "exchange": "amq.topic",
                    "routing_key": "weather.*",
                    "status": "slow",
                    "slow_ms": "100",
                },
            }
        )
        subscribed = await _hello(socket)
        assert subscribed["description"] == (
            f"vhost {vhost}, exchange amq.topic, routing key weather.*, slower than 100 ms"
        )
        await sync_to_async(publisher.calls)(wanted, fast, wrong_key, elsewhere)
        got = await _gather(socket, _has(wanted[0]), timeout=5)
        # Anything else would have come in the same frame, or the next within 100 ms.
        got += await _gather(socket, lambda _: False, timeout=0.5)
        html = _html(got)
        assert wanted[0] in html
        for unwanted in (fast, wrong_key, elsewhere):
            assert unwanted[0] not in html
        rows = [m for m in got if m["type"] == "rows"]
        assert rows[0]["status"]["rates"]["seen"] > 0
        assert all(stamp > 0 for m in rows for stamp in m["stamps"])

        # A new filter takes effect on the open socket.
        await socket.send_json_to(
            {"type": "subscribe", "filters": {"vhost": vhost, "service": "rpc_queue"}}
        )
        await _hello(socket)
        await sync_to_async(publisher.calls)(later, fast)
        got = await _gather(socket, _has(later[0]), timeout=5)
        assert later[0] in _html(got) and fast[0] not in _html(got)
        await socket.disconnect()

    run_async(scenario)


def test_a_viewer_gets_no_events_of_a_broker_it_cannot_see(viewer, tap, monkeypatch):
    cookie = _cookie(viewer)
    vhost, hidden = unique_name("ws-seen"), unique_name("ws-hidden")
    unknown_broker = tap(broker="another-installation")
    default = tap()
    foreign = rpc_call(vhost, latency_ms=3)
    secret = rpc_call(hidden, latency_ms=3)
    seen = rpc_call(vhost, latency_ms=3)

    real_may_see = subscriptions.may_see

    def may_see(user, broker, event_vhost, brokers=None):
        # A rule narrower than today's: this viewer may not see the vhost `hidden`.
        if event_vhost == hidden:
            return False
        return real_may_see(user, broker, event_vhost, brokers)

    monkeypatch.setattr(subscriptions, "may_see", may_see)

    async def scenario():
        socket, connected, _ = await _connect("/ws/flows/", ORIGIN, cookie)
        assert connected
        await _hello(socket)
        await sync_to_async(unknown_broker.calls)(foreign)
        await sync_to_async(default.calls)(secret, seen)
        got = await _gather(socket, _has(seen[0]), timeout=5)
        got += await _gather(socket, lambda _: False, timeout=0.5)
        html = _html(got)
        assert seen[0] in html
        assert foreign[0] not in html  # a broker Warren does not know
        assert secret[0] not in html  # a vhost the rule hides
        await socket.disconnect()

    run_async(scenario)


def test_it_closes_the_stream_of_a_user_deactivated_mid_stream(viewer, tap):
    cookie = _cookie(viewer)
    vhost = unique_name("ws")
    publisher = tap()

    def deactivate():
        viewer.is_active = False
        viewer.save()

    async def scenario():
        socket, connected, _ = await _connect(f"/ws/flows/?vhost={vhost}", ORIGIN, cookie)
        assert connected
        await _hello(socket)
        await sync_to_async(publisher.calls)(rpc_call(vhost))
        assert await _gather(socket, _has("flow-"), timeout=5)
        await sync_to_async(deactivate)()
        call = rpc_call(vhost)
        await sync_to_async(publisher.calls)(call)
        got = await _gather(socket, lambda ms: ms and ms[-1]["type"] == "websocket.close")
        assert [m["type"] for m in got[-2:]] == ["denied", "websocket.close"]
        assert got[-1]["code"] == 4403
        assert call[0] not in _html(got)

    run_async(scenario)


def test_it_holds_rows_back_while_paused_and_counts_them(viewer, tap):
    cookie = _cookie(viewer)
    vhost = unique_name("ws")
    publisher = tap()
    held, after = rpc_call(vhost), rpc_call(vhost)

    async def scenario():
        socket, connected, _ = await _connect(f"/ws/flows/?vhost={vhost}", ORIGIN, cookie)
        assert connected
        await _hello(socket)
        await socket.send_json_to({"type": "pause"})
        await sync_to_async(publisher.calls)(held)
        got = await _gather(
            socket,
            lambda ms: any(m["type"] == "status" and m["status"]["held"] for m in ms),
            timeout=5,
        )
        assert held[0] not in _html(got)
        assert got[-1]["status"]["paused"] and got[-1]["status"]["held"] == 1
        await socket.send_json_to({"type": "resume"})
        await sync_to_async(publisher.calls)(after)
        got = await _gather(socket, _has(after[0]), timeout=5)
        assert after[0] in _html(got)
        await socket.disconnect()

    run_async(scenario)


def test_it_samples_when_more_arrive_than_a_person_can_read_and_says_so(viewer, tap):
    cookie = _cookie(viewer)
    vhost = unique_name("ws")
    publisher = tap()
    calls = [rpc_call(vhost) for _ in range(300)]

    async def scenario():
        socket, connected, _ = await _connect(f"/ws/flows/?vhost={vhost}", ORIGIN, cookie)
        assert connected
        await _hello(socket)
        await sync_to_async(publisher.calls)(*calls)
        got = await _gather(socket, _has("flow-"), timeout=5)
        rows = [m for m in got if m["type"] == "rows"]
        shown = len(re.findall(r'<tr id="flow-', _html(rows)))
        assert 0 < shown <= BURST
        assert rows[-1]["status"]["sampled"] is True
        assert rows[-1]["status"]["rates"]["matched"] >= 100  # the true rate, not the shown one
        await socket.disconnect()

    run_async(scenario)


@override_settings(WARREN_MASKED_FIELDS=["password"])
def test_the_message_tail_sends_matching_deliveries_masked(viewer, tap):
    cookie = _cookie(viewer)
    vhost = unique_name("ws")
    publisher = tap()
    corr, call = rpc_call(vhost, body=b'{"n": 3, "password": "hunter2"}')

    async def scenario():
        path = f"/ws/messages/?vhost={vhost}&status=deliver&queue=rpc_queue"
        socket, connected, _ = await _connect(path, ORIGIN, cookie)
        assert connected
        await _hello(socket)
        await sync_to_async(publisher.calls)((corr, call))
        got = await _gather(socket, _has("msg-"), timeout=5)
        got += await _gather(socket, lambda _: False, timeout=0.3)
        html = _html(got)
        assert html.count('<tr id="msg-') == 1  # the request's delivery, nothing else
        assert f'id="msg-{call[1].id}"' in html
        assert "hunter2" not in html and "********" in html
        await socket.disconnect()

    run_async(scenario)
