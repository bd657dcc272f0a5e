"""The tracer's JSON API (docs/architecture.md): field names, filters, cursors, 400s, 401s."""

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from console.models import ApiToken
from tests.tracer.frames import frame, rpc_call
from tracer.models import TapSession
from tracer.store import storage
from tracer.times import from_us, now_us

pytestmark = pytest.mark.django_db

MESSAGE_FIELDS = {
    "id",
    "event",
    "captured_at",
    "vhost",
    "node",
    "exchange",
    "routing_keys",
    "routed_queues",
    "queue",
    "properties",
    "correlation_id",
    "reply_to",
    "body_size",
    "body_truncated",
    "redelivered",
    "user",
    "connection",
    "channel",
    "flow_id",
    "backlog",
    "replay_of",
}
FLOW_FIELDS = {
    "id",
    "vhost",
    "service",
    "correlation_id",
    "reply_to",
    "pairing",
    "status",
    "requested_at",
    "request_delivered_at",
    "replied_at",
    "reply_delivered_at",
    "latency_ms",
    "queue_wait_ms",
    "service_ms",
    "end_to_end_ms",
    "request_id",
    "reply_id",
    "replies",
    "redeliveries",
    "late",
}
STATS_FIELDS = {
    "service",
    "count",
    "timeouts",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "mean_ms",
}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
ENDPOINTS = [
    "/api/messages",
    "/api/messages/1",
    "/api/flows",
    "/api/flows/1",
    "/api/flows/stats",
    "/api/tap/status",
]


def relative(frames_at_zero):
    """Shift synthetic events so that they happened in the last minute."""
    shift = now_us() - 60_000_000 - min(e.captured_us for e in frames_at_zero)
    for event in frames_at_zero:
        event.captured_us += shift
    return frames_at_zero


@pytest.fixture
def calls():
    """Three calls of 5, 10 and 15 ms in vhost v, one in w, plain traffic, a secret."""
    events, ids = [], []
    for index, work in enumerate((3_000, 8_000, 13_000)):
        corr, evs = rpc_call(at=index * 100_000, work=work)
        ids.append(corr)
        events += evs
    other, evs = rpc_call(at=500_000, vhost="w", service="amq.topic", body=b"weather?")
    events += evs
    events.append(
        frame(
            "publish",
            600_000,
            routing_key="orders",
            body=b'{"password": "hunter2", "item": "hunter2-book"}',
        )
    )
    events.append(frame("publish", 700_000, routing_key="orders", body=b"\xff\x00binary"))
    relative(events)
    storage.store_batch(events, timeout_s=30)
    return ids, events


def test_it_refuses_anonymous_callers_and_accepts_bearer_tokens(client, calls, viewer):
    for url in ENDPOINTS:
        response = client.get(url)
        assert response.status_code == 401, url
        assert "error" in response.json()
    token = ApiToken.issue(viewer)
    bearer = Client(headers={"Authorization": f"Bearer {token}"})
    assert bearer.get("/api/messages").status_code == 200
    assert Client(headers={"Authorization": "Bearer nope"}).get("/api/flows").status_code == 401


def test_it_lists_messages_newest_first_with_the_designed_fields(viewer_client, calls):
    data = viewer_client.get("/api/messages").json()
    assert set(data) == {"results", "next"} and data["next"] is None
    results = data["results"]
    assert len(results) == 18
    assert all(set(item) >= MESSAGE_FIELDS for item in results)
    times = [item["captured_at"] for item in results]
    assert times == sorted(times, reverse=True) and all(ISO.match(t) for t in times)
    publish = next(i for i in results if i["event"] == "publish" and i["reply_to"])
    assert publish["queue"] is None and publish["routed_queues"] == publish["routing_keys"]
    deliver = next(i for i in results if i["event"] == "deliver")
    assert deliver["routed_queues"] is None and deliver["queue"]


def test_it_filters_messages(viewer_client, calls):
    ids, events = calls

    def count(query):
        response = viewer_client.get("/api/messages?" + query)
        assert response.status_code == 200, response.json()
        return len(response.json()["results"])

    assert count("vhost=w") == 4
    assert count("vhost=v&event=deliver") == 6
    assert count("exchange=amq.default&vhost=v") == 14
    assert count("routing_key=orders") == 2
    assert count("queue=rpc_queue") == 3
    assert count(f"correlation_id={ids[1]}") == 4
    assert count(f"flow={events[0].id}") == 4
    assert count("q=weather") == 2
    assert count("since=1h") == 18 and count("until=1h") == 0
    assert count("since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00") == 0


def test_it_does_not_find_a_body_by_its_masked_value(viewer_client, calls):
    assert len(viewer_client.get("/api/messages?q=hunter2-book").json()["results"]) == 1
    found = viewer_client.get('/api/messages?q="password": "hunter2"').json()["results"]
    assert found == []


def test_it_pages_with_a_cursor(viewer_client, calls):
    seen, url, pages = [], "/api/messages?limit=5", 0
    while url:
        data = viewer_client.get(url).json()
        seen += [item["id"] for item in data["results"]]
        pages += 1
        url = f"/api/messages?limit=5&cursor={data['next']}" if data["next"] else None
    assert pages == 4 and len(seen) == len(set(seen)) == 18
    everything = [i["id"] for i in viewer_client.get("/api/messages").json()["results"]]
    assert seen == everything


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "event=consume",
        "since=yesterday",
        "since=2024-01-02T00:00:00Z&until=2024-01-01T00:00:00Z",
        "cursor=not-a-cursor",
        "flow=-1",
        "flow=x",
        "colour=red",
        "vhost=a&vhost=b",
        "q=" + "x" * 1001,
    ],
)
def test_it_refuses_bad_message_parameters_with_words(viewer_client, query):
    response = viewer_client.get("/api/messages?" + query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert isinstance(error, str) and len(error) > 10


@pytest.mark.parametrize(
    "query",
    [
        "status=done",
        "min_latency_ms=-1",
        "min_latency_ms=fast",
        "limit=5000",
        "service=a&service=b",
        "sort=latency",
    ],
)
def test_it_refuses_bad_flow_parameters_with_words(viewer_client, query):
    response = viewer_client.get("/api/flows?" + query)
    assert response.status_code == 400 and response.json()["error"]


def test_it_shows_a_message_with_its_body_in_three_forms(viewer_client, calls):
    _, events = calls
    secret, binary = events[-2], events[-1]
    data = viewer_client.get(f"/api/messages/{secret.id}").json()
    assert MESSAGE_FIELDS | {"body_base64", "body_text", "body_json"} <= set(data)
    assert data["body_json"] == {"password": "********", "item": "hunter2-book"}
    assert 'hunter2"' not in data["body_text"]
    assert base64.b64decode(data["body_base64"]) == data["body_text"].encode()
    data = viewer_client.get(f"/api/messages/{binary.id}").json()
    assert base64.b64decode(data["body_base64"]) == b"\xff\x00binary"
    assert data["body_text"] is None and data["body_json"] is None
    missing = viewer_client.get("/api/messages/999999999")
    assert missing.status_code == 404 and missing.json()["error"]
    assert viewer_client.get(f"/api/messages/{2**64}").status_code == 404


def test_it_lists_and_shows_flows(viewer_client, calls):
    ids, events = calls
    data = viewer_client.get("/api/flows").json()
    assert len(data["results"]) == 4 and data["next"] is None
    assert all(set(item) >= FLOW_FIELDS for item in data["results"])
    assert {i["service"] for i in data["results"]} == {"rpc_queue", "amq.topic"}
    slow = viewer_client.get("/api/flows?min_latency_ms=9&vhost=v").json()["results"]
    assert sorted(f["latency_ms"] for f in slow) == [10.0, 15.0]
    assert (
        len(viewer_client.get("/api/flows?status=complete&service=rpc_queue").json()["results"])
        == 3
    )
    assert viewer_client.get("/api/flows?status=timeout").json()["results"] == []
    one = viewer_client.get(f"/api/flows?correlation_id={ids[0]}").json()["results"][0]
    detail = viewer_client.get(f"/api/flows/{one['id']}").json()
    assert detail["status"] == "complete" and detail["correlation_id"] == ids[0]
    assert [m["event"] for m in detail["messages"]] == ["publish", "deliver", "publish", "deliver"]
    assert all(ISO.match(detail[name]) for name in ("requested_at", "reply_delivered_at"))
    assert (detail["queue_wait_ms"], detail["service_ms"], detail["latency_ms"]) == (2.0, 3.0, 5.0)
    assert viewer_client.get("/api/flows/424242").status_code == 404


def test_it_computes_latency_statistics_per_service(viewer_client, calls):
    services = viewer_client.get("/api/flows/stats?vhost=v").json()["services"]
    assert len(services) == 1
    stats = services[0]
    assert set(stats) >= STATS_FIELDS
    assert (stats["service"], stats["count"], stats["timeouts"]) == ("rpc_queue", 3, 0)
    assert (stats["p50_ms"], stats["max_ms"], stats["mean_ms"]) == (10.0, 15.0, 10.0)
    assert stats["p90_ms"] == 14.0 and stats["p99_ms"] == 14.9
    everything = viewer_client.get("/api/flows/stats").json()["services"]
    assert {s["service"] for s in everything} == {"rpc_queue", "amq.topic"}
    assert viewer_client.get("/api/flows/stats?since=1m&until=2m").status_code == 400
    assert viewer_client.get("/api/flows/stats?service=nothing").json()["services"] == []


def test_it_says_which_window_its_statistics_cover(viewer_client, calls):
    asked = viewer_client.get(
        "/api/flows/stats?since=2020-01-01T00:00:00Z&until=2030-01-01T00:00:00Z"
    ).json()
    assert (asked["from"], asked["to"]) == (
        "2020-01-01T00:00:00.000000Z",
        "2030-01-01T00:00:00.000000Z",
    )
    default = viewer_client.get("/api/flows/stats").json()
    to = datetime.fromisoformat(default["to"])
    assert to - datetime.fromisoformat(default["from"]) == timedelta(hours=24)
    assert abs((datetime.now(UTC) - to).total_seconds()) < 60
    (entry,) = [s for s in default["services"] if s["service"] == "rpc_queue"]
    assert entry["late"] == 0 and entry["active_s"] > 0
    assert entry["calls_per_s"] == round(entry["count"] / entry["active_s"], 3)


YEAR_ONE = ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000001Z", "0001-01-01"]


@pytest.mark.parametrize("value", YEAR_ONE)
def test_a_window_ending_in_year_one_is_empty_and_one_starting_there_holds_everything(
    viewer_client, calls, value
):
    """The first day there is: the statistics' default day before it does not exist."""

    def answer(url):
        response = viewer_client.get(url)
        assert response.status_code == 200, (url, response.content)
        return response.json()

    assert answer(f"/api/flows/stats?until={value}")["services"] == []
    both = answer(f"/api/flows/stats?since={value}&until={value}")
    assert both["services"] == [] and both["from"].startswith("0001-01-01T00:00:00")
    everything = answer(f"/api/flows/stats?since={value}")["services"]
    assert {(s["vhost"], s["service"], s["count"]) for s in everything} == {
        ("v", "rpc_queue", 3),
        ("w", "amq.topic", 1),
    }
    for url in ("/api/messages", "/api/flows"):
        assert answer(f"{url}?until={value}") == {"results": [], "next": None}
        assert answer(f"{url}?since={value}") == answer(url)


@pytest.mark.parametrize(
    "query",
    [
        "until=9999-12-31T23:59:59.999999-14:00",
        "since=9999-12-31T23:00:00-01:00",
        "since=0001-01-01T00:00:00%2B01:00",
        "until=0001-01-01T00:59:59%2B01:00",
    ],
)
@pytest.mark.parametrize("url", ["/api/messages", "/api/flows", "/api/flows/stats"])
def test_it_refuses_a_time_outside_the_years_1_to_9999_in_utc_with_words(viewer_client, url, query):
    response = viewer_client.get(f"{url}?{query}")
    assert response.status_code == 400
    assert "out of range" in response.json()["error"]


def test_it_reports_the_tap(viewer_client, calls):
    data = viewer_client.get("/api/tap/status").json()
    assert {
        "running",
        "vhosts",
        "received",
        "stored",
        "dropped",
        "queue_depth",
        "last_event_at",
    } <= set(data)
    assert data["running"] is False
    now = from_us(now_us())
    TapSession.objects.create(
        pid=1,
        vhosts=["v"],
        started_at=now,
        heartbeat_at=now,
        received=18,
        stored=18,
        dropped=2,
        queue_depth=5,
        last_event_at=now,
        connected={"v": True},
    )
    data = viewer_client.get("/api/tap/status").json()
    assert data["running"] is True and data["vhosts"] == ["v"]
    assert (data["received"], data["stored"], data["dropped"], data["queue_depth"]) == (
        18,
        18,
        2,
        5,
    )
    assert ISO.match(data["last_event_at"])
    health = viewer_client.get("/api/health").json()
    assert health["tap"]["running"] is True
