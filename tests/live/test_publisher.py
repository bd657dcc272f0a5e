"""The tap's live publisher against the real Redis and database."""

import time
from urllib.parse import urlsplit, urlunsplit

import orjson
import pytest
from channels_redis.core import RedisChannelLayer
from django.test import override_settings

from tests.conftest import unique_name
from tests.live.events import event, rpc_call
from tests.live.listen import Listener, events_of
from tests.live.proxy import TcpProxy
from tests.polling import wait_until
from tracer.live import publish as live
from tracer.store import storage
from tracer.times import now_us


@pytest.fixture
def listener():
    listening = Listener()
    yield listening
    listening.close()


@pytest.fixture
def publisher():
    publishers = []

    def make(**options):
        made = live.LivePublisher(**options)
        publishers.append(made)
        return made

    yield make
    for made in publishers:
        made.close()


@pytest.mark.django_db
def test_it_sends_a_committed_batch_as_one_frame_per_stream(listener):
    vhost = unique_name("pub")
    corr, events = rpc_call(vhost, latency_ms=7.5)
    result = storage.store_batch(events)

    live.publish_batch(result, events)  # what the tap calls after its commit

    frames = listener.collect(
        lambda got: (
            events_of(got, "live.flows", vhost) and len(events_of(got, "live.messages", vhost)) >= 4
        )
    )
    (flow,) = events_of(frames, "live.flows", vhost)
    assert flow["correlation_id"] == corr
    assert flow["status"] == "complete"
    assert flow["latency_ms"] == pytest.approx(7.5)
    assert flow["service"] == "rpc_queue"
    assert flow["broker"] == "default"
    messages = events_of(frames, "live.messages", vhost)
    assert [m["id"] for m in messages] == [e.id for e in events]
    assert [m["event"] for m in messages] == ["publish", "deliver", "publish", "deliver"]
    assert messages[0]["preview"] == '{"n": 30}'


@pytest.mark.django_db
def test_it_coalesces_the_changes_of_a_flow_into_its_last_state(listener, publisher):
    vhost = unique_name("pub")
    sender = publisher(min_interval_s=0.5)
    _, warmup = rpc_call(vhost, routing_key="warmup")
    sender.publish_batch(warmup, storage.store_batch(warmup).flows)
    listener.collect(lambda got: events_of(got, "live.flows", vhost))

    corr, call = rpc_call(vhost)
    request, reply = call[:2], call[2:]
    sender.publish_batch(request, storage.store_batch(request).flows)  # pending
    sender.publish_batch(reply, storage.store_batch(reply).flows)  # complete

    frames = listener.collect(lambda got: False, timeout=1.5)
    sent = [f for f in events_of(frames, "live.flows", vhost) if f["correlation_id"] == corr]
    assert [f["status"] for f in sent] == ["complete"]
    flow_frames = [
        f for f in frames if f["type"] == "live.flows" and events_of([f], "live.flows", vhost)
    ]
    assert len(flow_frames) == 2  # the warm-up's, then one for both batches
    assert flow_frames[1]["received_at"] - flow_frames[0]["received_at"] >= 0.4


@pytest.mark.django_db
@override_settings(WARREN_MASKED_FIELDS=["password", "token"])
def test_it_never_lets_a_masked_field_out(listener, publisher):
    vhost = unique_name("pub")
    secret = event(
        "publish",
        now_us(),
        vhost,
        "",
        "login",
        props={"headers": {"Password": "hunter2", "nested": {"token": "abc123"}}},
        body=b'{"user": "ann", "password": "hunter2"}',
    )
    cut = event("publish", now_us(), vhost, "", "login", body=b'{"password": "hunter2", "pad": "')
    stored = [secret, cut]
    storage.store_batch(stored)

    publisher().publish_batch(stored)

    frames = listener.collect(lambda got: len(events_of(got, "live.messages", vhost)) >= 2)
    wire = orjson.dumps(frames)
    assert b"hunter2" not in wire and b"abc123" not in wire
    previews = [m["preview"] for m in events_of(frames, "live.messages", vhost)]
    assert previews[0] == '{"user":"ann","password":"********"}'
    assert '"password": "********"' in previews[1]


@pytest.mark.django_db
def test_it_publishes_the_flows_a_timeout_sweep_turned(listener):
    vhost = unique_name("pub")
    corr, call = rpc_call(vhost, answered=False, start_us=now_us() - 32_000_000)
    storage.store_batch(call, now=now_us() - 31_000_000)  # still pending when stored

    swept = storage.sweep_timeouts(timeout_s=30)
    live.publish_sweep(swept, timeout_s=30)

    frames = listener.collect(lambda got: events_of(got, "live.flows", vhost))
    (flow,) = events_of(frames, "live.flows", vhost)
    assert swept >= 1
    assert (flow["correlation_id"], flow["status"]) == (corr, "timeout")


def _numbered(events, first):
    for offset, captured in enumerate(events):
        captured.id = first + offset
    return events


def _keys(frames, vhost):
    return {m["routing_key"] for m in events_of(frames, "live.messages", vhost)}


@pytest.mark.serial  # timed: alone, after the parallel run
def test_it_never_blocks_the_tap_while_redis_is_away_and_recovers(listener, publisher, settings):
    redis = urlsplit(settings.REDIS_URL)
    proxy = TcpProxy(redis.port or 6379).start()
    through_proxy = urlunsplit(redis._replace(netloc=f"127.0.0.1:{proxy.port}"))
    sender = publisher(
        layer_factory=lambda: RedisChannelLayer(hosts=[through_proxy], capacity=1000, expiry=10),
        tick_s=0.5,
    )
    vhost = unique_name("pub")
    try:
        sender.publish_batch(_numbered(rpc_call(vhost, routing_key="before")[1], 1))
        listener.collect(lambda got: "before" in _keys(got, vhost))
        wait_until(lambda: sender.stats()["redis_ok"] is True, 5, 0.02, "Redis reachable")

        proxy.stop()
        lost = _numbered(rpc_call(vhost, routing_key="lost")[1], 10)
        started = time.monotonic()
        for _ in range(50):
            sender.publish_batch(lost)
        assert time.monotonic() - started < 0.05  # the tap never waits for Redis
        wait_until(lambda: sender.stats()["send_errors"] > 0, 5, 0.02, "a send error counted")
        stats = sender.stats()
        assert stats["redis_ok"] is False
        assert stats["dropped"] >= 4

        proxy.start()
        after = _numbered(rpc_call(vhost, routing_key="after")[1], 20)

        def after_came_through():
            if "after" in _keys(listener.frames, vhost):
                return True
            sender.publish_batch(after)
            listener.collect(lambda got: "after" in _keys(got, vhost), timeout=0.5)
            return "after" in _keys(listener.frames, vhost)

        wait_until(after_came_through, 15, 0, "events published after Redis came back")
        assert "lost" not in _keys(listener.frames, vhost)
        wait_until(lambda: sender.stats()["redis_ok"] is True, 5, 0.02, "Redis reachable")
    finally:
        proxy.stop()


@pytest.mark.django_db
def test_it_sends_nothing_for_a_stream_no_page_watches(publisher):
    only_flows = Listener(streams=(live.FLOWS,))
    try:
        vhost = unique_name("pub")
        sender = publisher()
        _, events = rpc_call(vhost)
        result = storage.store_batch(events)

        sender.publish_batch(events, result.flows)

        frames = only_flows.collect(lambda got: events_of(got, "live.flows", vhost))
        assert events_of(frames, "live.flows", vhost)
        wait_until(
            lambda: sender.stats()["unwatched"] == 4, 5, 0.02, "the four messages counted unwatched"
        )
        assert sender.stats()["dropped"] == 0
    finally:
        only_flows.close()
