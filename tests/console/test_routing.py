"""Where a routing key leads: the broker's rules for direct, fanout and topic exchanges."""

import pytest

from console.exchanges import Binding, routes, topic_matches


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("#.ohio", "weather.ohio", True),
        ("#.ohio", "ohio", True),
        ("#.ohio", "weather.ohio.cold", False),
        ("sports.#", "sports", True),
        ("sports.#", "sports.ohio", True),
        ("*.ohio", "weather.ohio", True),
        ("*.ohio", "ohio", False),
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.c", False),
        ("#", "", True),
        ("#.#", "x", True),
        ("a.#.b", "a.b", True),
        ("a.#.b", "a.x.y.b", True),
        ("", "", True),
        ("", "a", False),
    ],
)
def test_it_matches_topic_patterns_like_the_broker(pattern, key, expected):
    assert topic_matches(pattern, key) is expected


def _binding(key, destination="q"):
    return Binding("v", "x", destination, "queue", key, {}, key)


def test_it_routes_direct_fanout_topic_and_leaves_headers_undecided():
    bindings = [_binding("a", "qa"), _binding("b.#", "qb"), _binding("b.c", "qc")]
    assert [b.destination for b in routes("direct", bindings, "b.c")] == ["qc"]
    assert [b.destination for b in routes("topic", bindings, "b.c")] == ["qb", "qc"]
    assert len(routes("fanout", bindings, "anything")) == 3
    assert routes("headers", bindings, "a") is None
