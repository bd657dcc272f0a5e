"""Replay JSON API (docs/architecture.md): who may, what it answers, a real worker behind it."""

import json
import time

import pytest

from console.models import ApiToken, AuditEntry
from replay import engine, workers
from replay.models import ReplayJob
from tests.polling import wait_until
from tests.replay.helpers import capture, capture_many, trace_event
from tests.replay.worker import Worker


def post(client, data, **headers):
    return client.post("/api/replays", json.dumps(data), content_type="application/json", **headers)


def wait_for_state(client, job_id, states, timeout_s=20.0, **headers):
    """The job as the API shows it once its state is one of `states`."""
    return wait_until(
        lambda: client.get(f"/api/replays/{job_id}", **headers).json(),
        check=lambda answer: answer["state"] in states,
        timeout=timeout_s,
        interval=0.1,
        what=f"replay {job_id} to be {' or '.join(sorted(states))}",
    )


@pytest.mark.django_db
def test_it_refuses_a_viewer_and_audits_the_attempt(viewer_client, broker):
    message = capture(broker.vhost, routing_key="q", body=b"x")

    response = post(viewer_client, {"message_ids": [message.id]})

    assert response.status_code == 403
    assert response.json() == {"error": "This action needs the operator role."}
    assert ReplayJob.objects.count() == 0
    entry = AuditEntry.objects.get()
    assert (entry.username, entry.action, entry.result) == ("vera-viewer", "api_replays", "denied")
    assert viewer_client.post(f"/replays/new?message={message.id}").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({}, "exactly one of message_ids"),
        ({"message_ids": []}, "non-empty list"),
        ({"message_ids": ["x"]}, "whole numbers"),
        ({"message_ids": [0]}, "between 1 and 9223372036854775807"),
        ({"flow_ids": [1 << 63]}, "between 1 and 9223372036854775807"),
        ({"message_ids": [1], "flow_ids": [1]}, "exactly one of"),
        ({"message_ids": [1], "rate_per_s": 0}, "'rate_per_s' must be more than 0"),
        ({"message_ids": [1], "body_base64": "***"}, "not valid base64"),
        ({"message_ids": [1], "headers": ["a"]}, "'headers' must be a JSON object"),
        ({"message_ids": [1], "headers": {"token": "********"}}, "masked value"),
        ({"message_ids": [1], "dry_run": "yes"}, "'dry_run' must be true or false"),
        ({"message_ids": [1], "broker": "nope"}, "No broker 'nope'"),
        ({"filter": {"since": "yesterday"}}, "must be an ISO 8601 time"),
    ],
)
def test_it_explains_what_is_wrong_with_a_request(operator_client, data, words):
    response = post(operator_client, data)

    assert response.status_code == 400
    assert words in response.json()["error"]
    assert AuditEntry.objects.filter(action="replay", result="failed").count() == 1


@pytest.mark.django_db
def test_it_answers_404_for_unknown_messages_and_jobs(operator_client):
    response = post(operator_client, {"message_ids": [987654321]})
    assert response.status_code == 404
    assert "No captured message #987654321" in response.json()["error"]
    assert operator_client.get("/api/replays/987654321").status_code == 404


@pytest.mark.django_db
def test_it_wants_a_second_confirmation_for_many_messages(operator_client, broker, settings):
    settings.WARREN_REPLAY_CONFIRM_ABOVE = 3
    capture_many([trace_event(broker.vhost, routing_key="q", body=b"%d" % n) for n in range(5)])

    refused = post(operator_client, {"filter": {"vhost": broker.vhost}})
    accepted = post(operator_client, {"filter": {"vhost": broker.vhost}, "confirm": True})

    assert refused.status_code == 409
    assert refused.json()["total"] == 5
    assert refused.json()["confirm_above"] == 3
    assert accepted.status_code == 202
    assert accepted.json()["total"] == 5


@pytest.mark.django_db
def test_it_reports_a_dry_run_with_masked_properties(operator_client, broker):
    queue = broker.queue()
    message = capture(
        broker.vhost, routing_key=queue, body=b"x", props={"headers": {"password": "hunter2"}}
    )
    job_id = post(operator_client, {"message_ids": [message.id], "dry_run": True}).json()["id"]
    engine.run_job(job_id)

    answer = operator_client.get(f"/api/replays/{job_id}").json()

    assert (answer["status"], answer["sent"], answer["dry_run"]) == ("done", 0, True)
    (planned,) = answer["planned"]
    assert planned["properties"]["headers"]["password"] == "********"
    assert planned["properties"]["headers"]["x-warren-replay-of"] == message.id
    assert broker.depth(queue) == 0


@pytest.mark.django_db(transaction=True)
def test_it_runs_an_api_replay_on_a_real_worker(operator, client, broker, settings):
    queue = broker.queue(exchange="orders", key="order.created")
    messages = capture_many(
        [
            trace_event(broker.vhost, exchange="orders", routing_key="order.created", body=b"a"),
            trace_event(broker.vhost, exchange="orders", routing_key="order.lost", body=b"b"),
        ]
    )
    token = {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.issue(operator)}"}

    with Worker() as worker:
        settings.WARREN_REPLAY_QUEUE = worker.queue
        response = post(
            client, {"message_ids": [m.id for m in messages], "rate_per_s": 50}, **token
        )
        assert response.status_code == 202
        created = response.json()
        assert set(created) >= {"id", "status", "total"}
        assert (created["status"], created["total"]) == ("queued", 2)
        answer = wait_for_state(client, created["id"], {"done", "failed"}, **token)

    assert (answer["status"], answer["total"], answer["sent"]) == ("done", 2, 2)
    assert (answer["confirmed"], answer["failed"]) == (1, 1)
    (error,) = answer["errors"]
    assert error["message_id"] == messages[1].id
    assert error["error"].startswith("returned: 312 NO_ROUTE")
    assert answer["replies"] == []
    ((props, body),) = broker.take(queue)
    assert (body, props.headers["x-warren-replay-of"]) == (b"a", messages[0].id)
    finished = AuditEntry.objects.get(action="replay_finished")
    assert finished.username == "otto-operator"
    assert "2 sent, 1 confirmed, 1 failed" in finished.detail


@pytest.mark.django_db(transaction=True)
def test_it_resumes_after_the_worker_is_killed_without_sending_twice(
    operator_client, broker, settings
):
    queue = broker.queue()
    total = 60
    capture_many(
        [trace_event(broker.vhost, routing_key=queue, body=b"%d" % n) for n in range(total)]
    )
    data = {"filter": {"vhost": broker.vhost}, "rate_per_s": 25, "confirm": True}

    with Worker() as worker:
        settings.WARREN_REPLAY_QUEUE = worker.queue
        job_id = post(operator_client, data).json()["id"]
        wait_until(
            lambda: ReplayJob.objects.get(id=job_id).confirmed >= 15,
            timeout=20,
            what="15 confirmed before the worker is killed",
        )
        worker.kill()
    time.sleep(workers.DEAD_PID_GRACE_S + 0.2)

    stopped = operator_client.get(f"/api/replays/{job_id}").json()
    assert (stopped["state"], stopped["status"]) == ("interrupted", "failed")
    assert 15 <= stopped["confirmed"] < total
    arrived = broker.wait_depth(queue, stopped["confirmed"])
    # At most one message can have been published and not yet recorded as confirmed.
    assert stopped["in_flight"] in (0, 1)
    assert stopped["confirmed"] <= arrived <= stopped["confirmed"] + stopped["in_flight"]
    assert stopped["sent"] == stopped["confirmed"] + stopped["in_flight"]
    assert "stopped" in stopped["errors"][0]["error"]

    # The operator looks at the queue: the in-flight message arrived, or it did not.
    in_flight = "skip" if arrived > stopped["confirmed"] else "resend"
    with Worker() as worker:
        settings.WARREN_REPLAY_QUEUE = worker.queue
        resumed = operator_client.post(
            f"/api/replays/{job_id}/resume",
            json.dumps({"in_flight": in_flight}),
            content_type="application/json",
        )
        assert resumed.status_code == 202
        final = wait_for_state(operator_client, job_id, {"done", "failed", "interrupted"})

    assert final["state"] == "done"
    assert broker.wait_depth(queue, total) == total
    time.sleep(0.2)
    bodies = sorted(int(body) for _, body in broker.take(queue))
    assert bodies == list(range(total))  # every message exactly once
    assert final["confirmed"] == total - (1 if in_flight == "skip" else 0)


@pytest.mark.django_db
def test_it_fills_replies_for_an_rpc_replay(operator_client, broker):
    request = capture(
        broker.vhost,
        routing_key="rpc_queue",
        body=b'{"n": 1}',
        props={"correlation_id": "c1", "reply_to": "amq.gen-x"},
    )
    broker.channel.queue_declare("rpc_queue")
    data = {"message_ids": [request.id], "await_reply": True, "reply_timeout_s": 0.3}
    job_id = post(operator_client, data).json()["id"]
    engine.run_job(job_id)

    answer = operator_client.get(f"/api/replays/{job_id}").json()

    (reply,) = answer["replies"]
    assert (reply["message_id"], reply["status"], reply["body_base64"]) == (
        request.id,
        "timeout",
        None,
    )
    assert answer["report"]["rpc"]["timeouts"] == 1
