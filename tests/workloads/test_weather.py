"""Weather farms behind amq.topic: one reply per state farm, two for a sports question."""

import json

import pytest

from tests.workloads.conftest import queues_left
from workloads import run_bounded
from workloads.weather import expected_replies, topic_matches


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("#.ohio", "weather.ohio", True),
        ("#.ohio", "ohio", True),
        ("#.ohio", "weather.virginia", False),
        ("sports.#", "sports.ohio", True),
        ("sports.#", "sports", True),
        ("sports.*", "sports.ohio.east", False),
        ("*.ohio", "news.ohio", True),
    ],
)
def test_it_matches_topics_as_the_broker_does(pattern, key, matches):
    assert topic_matches(pattern, key) is matches


def test_it_expects_two_replies_only_for_sports_questions():
    assert expected_replies("weather.ohio") == 1
    assert expected_replies("news.virginia") == 1
    assert expected_replies("sports.ohio") == 2
    assert expected_replies("weather.texas") == 0


def test_it_answers_from_the_right_farm_and_twice_for_sports_ohio(mgmt, scratch_vhost, amqp_url):
    result = run_bounded("weather", amqp_url, scratch_vhost, calls=12, timeout_s=10)

    assert (result.sent, result.answered, result.unanswered) == (12, 12, 0)
    by_service = {}
    for call in result.calls:
        by_service.setdefault(call.service, []).append(call)
        replies = [json.loads(body) for body in call.replies]
        request = json.loads(call.request_body)
        farms = sorted(reply.get("farm", "sports daemon") for reply in replies)
        if request["topic"] == "sports":
            assert farms == sorted([request["state"], "sports daemon"])
        else:
            assert farms == [request["state"]]
            assert replies[0]["topic"] == request["topic"]
    assert set(by_service) == {
        "amq.topic / weather.ohio",
        "amq.topic / news.virginia",
        "amq.topic / sports.ohio",
        "amq.topic / weather.virginia",
        "amq.topic / news.ohio",
        "amq.topic / sports.virginia",
    }
    assert all(len(call.replies) == 2 for call in by_service["amq.topic / sports.ohio"])
    assert all(len(call.replies) == 1 for call in by_service["amq.topic / weather.ohio"])
    assert queues_left(mgmt, scratch_vhost) == []
