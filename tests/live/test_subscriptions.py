"""Filters of the live pages and who may see which broker's events."""

import pytest

from console.models import Broker
from tracer.live.subscriptions import (
    FLOWS,
    MESSAGES,
    Filter,
    FilterError,
    may_see,
    topic_matches,
    visible_pairs,
)


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("#", "", True),
        ("#", "a.b.c", True),
        ("weather.*", "weather.ohio", True),
        ("weather.*", "weather.ohio.rain", False),
        ("weather.*", "weather", False),
        ("#.ohio", "ohio", True),
        ("#.ohio", "news.weather.ohio", True),
        ("#.ohio", "ohio.news", False),
        ("sports.#", "sports", True),
        ("sports.#", "sports.ohio.scores", True),
        ("a.#.z", "a.z", True),
        ("a.#.z", "a.b.c.z", True),
        ("a.#.z", "a.b.c", False),
        ("*.*", "a.b", True),
        ("*.*", "a", False),
        ("rpc_queue", "rpc_queue", True),
        ("rpc_queue", "rpc_queuex", False),
        ("we*ther", "weather", False),  # a star inside a word is literal
        ("we*ther", "we*ther", True),
        ("a.b", "aXb", False),  # the dot is a separator, not "any character"
        ("#.#", "x.y", True),
        ("q/%20 ü", "q/%20 ü", True),
    ],
)
def test_it_matches_routing_keys_like_a_topic_exchange(pattern, key, expected):
    assert topic_matches(pattern, key) is expected


def _flow(**fields):
    flow = {
        "kind": "flow",
        "id": 1,
        "broker": "default",
        "vhost": "v",
        "service": "rpc_queue",
        "correlation_id": "c-1",
        "status": "complete",
        "late": False,
        "latency_ms": 12.0,
    }
    flow.update(fields)
    return flow


def _message(**fields):
    message = {
        "kind": "message",
        "id": 1,
        "broker": "default",
        "vhost": "v",
        "event": "publish",
        "exchange": "amq.topic",
        "routing_key": "weather.ohio",
        "routing_keys": ["weather.ohio", "cc.key"],
        "routed_queues": ["ohio"],
        "queue": "",
        "correlation_id": "",
        "redelivered": False,
    }
    message.update(fields)
    return message


def test_it_filters_flows_by_status_slowness_and_errors():
    slow = Filter.parse(FLOWS, {"status": "slow", "slow_ms": "100"})
    assert slow.matches(_flow(latency_ms=150))
    assert not slow.matches(_flow(latency_ms=50))
    assert slow.matches(_flow(status="timeout", latency_ms=None))
    assert not slow.matches(_flow(status="pending", latency_ms=None))

    errors = Filter.parse(FLOWS, {"status": "errors"})
    assert errors.matches(_flow(status="timeout"))
    assert errors.matches(_flow(status="orphan", service=""))
    assert errors.matches(_flow(status="complete", late=True))
    assert not errors.matches(_flow())

    timeouts = Filter.parse(FLOWS, {"status": "timeout"})
    assert timeouts.matches(_flow(status="timeout")) and not timeouts.matches(_flow())


def test_it_reads_the_flows_list_parameter_for_slow_calls():
    flt = Filter.parse(FLOWS, {"service": "rpc_queue", "min_latency_ms": "250"})
    assert flt.status == "slow" and flt.slow_ms == 250
    assert flt.query() == {"service": "rpc_queue", "status": "slow", "slow_ms": 250.0}


def test_it_filters_flows_by_exchange_and_key_of_their_service():
    topic = _flow(service="amq.topic / weather.ohio")
    assert Filter.parse(FLOWS, {"exchange": "amq.topic", "routing_key": "*.ohio"}).matches(topic)
    assert not Filter.parse(FLOWS, {"exchange": "(default)"}).matches(topic)
    assert Filter.parse(FLOWS, {"exchange": "amq.default"}).matches(_flow())
    assert not Filter.parse(FLOWS, {"routing_key": "news.#"}).matches(topic)
    assert not Filter.parse(FLOWS, {"exchange": "amq.topic"}).matches(_flow(service=""))


def test_it_filters_messages_by_any_routing_key_queue_and_kind():
    message = _message()
    assert Filter.parse(MESSAGES, {"routing_key": "cc.*"}).matches(message)  # CC counts
    assert not Filter.parse(MESSAGES, {"routing_key": "news.#"}).matches(message)
    assert Filter.parse(MESSAGES, {"status": "publish"}).matches(message)
    assert not Filter.parse(MESSAGES, {"status": "deliver"}).matches(message)
    assert Filter.parse(MESSAGES, {"status": "unroutable"}).matches(_message(routed_queues=[]))
    assert not Filter.parse(MESSAGES, {"status": "unroutable"}).matches(message)
    delivery = _message(event="deliver", queue="ohio", redelivered=True, routed_queues=None)
    assert Filter.parse(MESSAGES, {"queue": "ohio", "status": "redelivered"}).matches(delivery)
    assert not Filter.parse(MESSAGES, {"queue": "virginia"}).matches(delivery)
    assert not Filter.parse(MESSAGES, {"vhost": "other"}).matches(message)
    assert Filter.parse(MESSAGES, {"correlation_id": "c"}).matches(_message(correlation_id="c"))


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"status": "sideways"}, "Unknown status"),
        ({"slow_ms": "fast"}, "number of milliseconds"),
        ({"slow_ms": "-1"}, "between 0 ms and one day"),
        ({"vhost": "x" * 300}, "longer than 255"),
        ({"service": {"a": 1}}, "must be text"),
        ({"routing_key": "a\x00b"}, "NUL"),
    ],
)
def test_it_refuses_filters_it_cannot_use_in_words(params, words):
    with pytest.raises(FilterError, match=words):
        Filter.parse(FLOWS, params)


def test_it_describes_a_filter_for_the_status_line():
    flt = Filter.parse(FLOWS, {"vhost": "/", "status": "slow", "slow_ms": "250"})
    assert flt.describe() == "vhost /, slower than 250 ms"
    assert Filter.parse(FLOWS, {}).describe() == "everything"


@pytest.mark.django_db
def test_it_lets_a_viewer_see_the_brokers_warren_knows_and_no_other(viewer, roleless):
    Broker.objects.create(
        slug="east",
        name="East",
        management_url="http://127.0.0.1:15672/",
        amqp_url="amqp://127.0.0.1:5672/",
        username="guest",
        password="guest",
    )
    assert may_see(viewer, "default", "/")
    assert may_see(viewer, "east", "orders")
    assert not may_see(viewer, "gone-broker", "/")
    assert not may_see(roleless, "default", "/")
    pairs = {("default", "/"), ("east", "x"), ("gone-broker", "/")}
    assert visible_pairs(viewer, pairs) == {("default", "/"), ("east", "x")}
    assert visible_pairs(roleless, pairs) == set()


@pytest.mark.django_db
def test_it_stops_showing_anything_to_a_deactivated_user(viewer):
    viewer.is_active = False
    viewer.save()
    assert not may_see(viewer, "default", "/")
