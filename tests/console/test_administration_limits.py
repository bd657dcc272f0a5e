"""console.administration: a user's or a vhost's limits changed only where they differ."""

from console.administration import bring_limits_to, limits_words

KNOWN = ("max-connections", "max-channels")


def changes(wanted: dict[str, int | None], current: dict[str, int]) -> list[tuple[str, ...]]:
    done: list[tuple[str, ...]] = []
    bring_limits_to(
        wanted,
        KNOWN,
        current,
        lambda limit, value: done.append(("set", limit, str(value))),
        lambda limit: done.append(("clear", limit)),
    )
    return done


def test_it_sets_a_new_limit_and_clears_an_emptied_one():
    wanted: dict[str, int | None] = {"max-connections": 5, "max-channels": None}
    done = changes(wanted, {"max-channels": 20})
    assert done == [("set", "max-connections", "5"), ("clear", "max-channels")]


def test_it_leaves_what_already_holds_alone():
    wanted: dict[str, int | None] = {"max-connections": 5, "max-channels": None}
    assert changes(wanted, {"max-connections": 5}) == []


def test_it_sets_a_limit_to_zero_rather_than_clearing_it():
    wanted: dict[str, int | None] = {"max-connections": 0, "max-channels": None}
    assert changes(wanted, {"max-connections": 3}) == [("set", "max-connections", "0")]


def test_it_names_each_limit_and_says_none_for_an_empty_one():
    wanted: dict[str, int | None] = {"max-connections": 0, "max-queues": None}
    assert limits_words(wanted) == "max-connections 0, max-queues none"
