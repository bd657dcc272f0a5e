"""Waiting in a page whose CSP forbids eval: Playwright's wait_for_function polls with
eval inside the page, so these helpers poll from Python with page.evaluate instead."""

from tests.polling import wait_until


def wait_in_page(page, function, arg=None, timeout=10.0, every=0.05):
    """Poll the JS `function` (e.g. "n => ...") with `arg` until truthy; its value."""
    return wait_until(lambda: page.evaluate(function, arg), timeout, every, function)


LIVE = """() => document.getElementById('live-state').dataset.state === 'live'
  && document.getElementById('live-interrupted').hidden
  && !!(window.WarrenLive.status && window.WarrenLive.status.tap_heard_us)"""


def wait_live(page, timeout=15.0):
    """Until the live page's socket is open and the tap's heartbeat has come through it."""
    return wait_in_page(page, LIVE, None, timeout)
