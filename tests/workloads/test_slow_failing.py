"""The slow and failing service: late replies, no replies, a crash and a redelivery."""

import json

import pytest

from tests.workloads.conftest import queues_left
from workloads import run_bounded
from workloads.slow_failing import bounded_behaviours


def test_it_spreads_the_misbehaving_requests_with_crashes_first():
    plan = bounded_behaviours(10, late=2, never=1, crash=1)
    assert plan.count("ok") == 6
    specials = [behaviour for behaviour in plan if behaviour != "ok"]
    assert specials == ["crash", "late", "never", "late"]
    assert plan[0] == "ok"
    with pytest.raises(ValueError, match="do not fit"):
        bounded_behaviours(2, late=1, never=1, crash=1)


def test_it_answers_late_never_and_after_a_crash_as_configured(mgmt, scratch_vhost, amqp_url):
    result = run_bounded(
        "slow_failing",
        amqp_url,
        scratch_vhost,
        calls=10,
        timeout_s=10,
        late=2,
        never=2,
        crash=1,
        late_delay_s=1.0,
        restart_delay_s=0.5,
    )

    assert (result.sent, result.answered, result.unanswered) == (10, 8, 2)
    by_behaviour = {}
    for call in result.calls:
        by_behaviour.setdefault(json.loads(call.request_body)["simulate"], []).append(call)
    assert {k: len(v) for k, v in by_behaviour.items()} == {
        "ok": 5,
        "late": 2,
        "never": 2,
        "crash": 1,
    }
    for call in by_behaviour["never"]:
        assert call.replies == [] and call.answered_at is None and call.client_ms is None
    for call in by_behaviour["late"]:
        (reply,) = [json.loads(body) for body in call.replies]
        assert call.client_ms >= 1000  # answered after late_delay_s
        assert reply["delayed_s"] == 1.0
    for call in by_behaviour["ok"]:
        (reply,) = [json.loads(body) for body in call.replies]
        assert reply["redelivered"] is False
        assert reply["delayed_s"] < 1.0  # the server's own short service time, not late
    # The server that took it first crashed without acking; the redelivery was answered once.
    (crashed,) = by_behaviour["crash"]
    (reply,) = [json.loads(body) for body in crashed.replies]
    assert reply["redelivered"] is True
    assert queues_left(mgmt, scratch_vhost) == []
