"""Waiting in a page whose CSP forbids eval: Playwright's wait_for_function polls with
eval inside the page, so these helpers poll from Python with page.evaluate instead."""

import time


def wait_until(page, function, arg=None, timeout=10.0, every=0.05):
    """Poll the JS `function` (e.g. "n => ...") with `arg` until truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(function, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {function}")
        time.sleep(every)


def wait_live(page, timeout=15.0):
    """Until the live page's socket is open and the tap's heartbeat has arrived."""
    return wait_until(
        page, "() => document.getElementById('live-state').dataset.state === 'live'", None, timeout
    )
