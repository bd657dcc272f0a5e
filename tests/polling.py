"""The suite's one bounded wait: ask again until the answer is the one awaited.

    wait_until(lambda: Message.objects.count() == 5, timeout=15, what="5 messages stored")
    depth = wait_until(lambda: broker.depth(q), check=lambda n: n >= 3, timeout=5, what="3 in q")

The probe is called at once, then every `interval` seconds; its value is returned
as soon as `check(value)` holds (by default: as soon as it is truthy). After
`timeout` seconds it fails with an AssertionError that says what was awaited, for
how long, and the last value seen. An exception of a type in `ignoring` counts as
a value not yet good (and is what "last seen" shows); any other goes through.
"""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "the condition",
    *,
    check: Callable[[T], object] = bool,
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """probe()'s first value that passes `check`, waiting at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
        except ignoring as error:
            last: object = error
        else:
            if check(value):
                return value
            last = value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}; last seen: {last!r}")
        if interval > 0:
            time.sleep(interval)
