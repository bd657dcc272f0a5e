"""tests/polling.py: the suite's one bounded wait."""

import itertools
import time

import pytest

from tests.polling import wait_until


def test_it_returns_the_first_value_that_passes():
    answers = iter([0, None, "", 7, 8])
    assert wait_until(lambda: next(answers), timeout=5, interval=0) == 7
    counts = itertools.count()
    assert wait_until(lambda: next(counts), check=lambda n: n >= 3, timeout=5, interval=0) == 3


def test_it_asks_at_once_and_does_not_sleep_after_a_good_answer():
    started = time.monotonic()
    assert wait_until(lambda: "ready", timeout=5, interval=10) == "ready"
    assert time.monotonic() - started < 5  # no interval slept


def test_it_fails_after_the_timeout_saying_what_it_awaited_and_what_it_saw():
    started = time.monotonic()
    with pytest.raises(AssertionError) as failure:
        wait_until(lambda: 41, check=lambda n: n == 42, timeout=0.3, what="the answer")
    assert time.monotonic() - started >= 0.3
    assert str(failure.value) == "waited 0.3 s for the answer; last seen: 41"


def test_it_waits_through_the_exceptions_it_is_told_to_ignore_and_no_others():
    answers = iter([KeyError("not yet"), KeyError("still not"), "there"])

    def probe() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(probe, timeout=5, interval=0, ignoring=(KeyError,)) == "there"
    with pytest.raises(AssertionError, match=r"last seen: KeyError\('gone'\)"):
        wait_until(lambda: {}["gone"], timeout=0.1, interval=0.01, ignoring=(KeyError,))
    with pytest.raises(ZeroDivisionError):
        wait_until(lambda: 1 / 0, timeout=5, ignoring=(KeyError,))
