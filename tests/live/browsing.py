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


LIVE = """() => document.getElementById('live-state').dataset.state === 'live'
  && document.getElementById('live-interrupted').hidden
  && !!(window.WarrenLive.status && window.WarrenLive.status.tap_heard_us)"""


def wait_live(page, timeout=15.0):
    """Until the live page's socket is open and the tap's heartbeat has come through it."""
    return wait_until(page, LIVE, None, timeout)
