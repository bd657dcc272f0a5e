"""A new user's first run, as the README tells it: `make run`, log in as the printed
administrator, `make demo`, open Live: the demo's first flow within a minute.

Serial (it uses the demo's own vhost name, `warren-demo`, and its tap follows
the stored choice of traced vhosts, `/` included, as a fresh clone's does) and
on SQLite only: its Warren has a fresh SQLite database of its own whatever the
run's database is. Broker state it created (Warren's tap queues and tracing in
`/` and `warren-demo`, the demo vhost) is removed afterwards.
"""

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rabbit.management_http import BrokerNotFound, BrokerUnavailable
from tests.browser.first_run import CommandFailed, Started, make_demo, make_run, manage
from tests.conftest import ARTIFACTS
from tests.live.browsing import wait_in_page
from tests.polling import wait_until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.one_database,
    # Start-up, two minutes' wait for a missing flow and the clean-up fit, so a miss
    # reports itself (with both logs) rather than by the suite's timeout.
    pytest.mark.timeout(600),
]

DEMO_VHOST = "warren-demo"  # what `make demo` uses: `manage.py demo` without --vhost
FIRST_FLOW_WITHIN_S = 60.0  # the goal: the first live flow within a minute of `make demo`
WAIT_AT_MOST_S = 120.0  # past the goal, so a miss says by how much
TAP_QUEUE = "warren.tap"
CLEAN_UP_WITHIN_S = 90.0
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

# A row of the demo's vhost for a flow captured after the demo started (a tap
# queue left from an earlier run could hold older ones).
DEMO_ROWS = """([vhost, since]) => Array.from(document.querySelectorAll('#live-rows tr.live-row'))
  .filter(row => row.cells[1].textContent.trim() === vhost && Number(row.dataset.stamp) >= since)
  .length"""
SCREENFUL = """n => document.querySelectorAll('#live-rows tr.live-row').length >= n
  && document.getElementById('live-rates').textContent.includes('/s captured')"""


def _has_tap_queue(mgmt, vhost: str) -> bool:
    try:
        mgmt.queue(vhost, TAP_QUEUE)
    except BrokerNotFound:
        return False
    return True


def _vhost_exists(mgmt, vhost: str) -> bool:
    try:
        mgmt.vhost(vhost)
    except BrokerNotFound:
        return False
    return True


@pytest.fixture
def warren(tmp_path: Path, mgmt) -> Iterator[Started]:
    """Warren started as `make run` starts it; afterwards, the broker as it was."""
    demo_vhost_existed = _vhost_exists(mgmt, DEMO_VHOST)
    # Vhosts Warren does not trace now (no tap queue): as they were, afterwards.
    untraced = [
        vhost
        for vhost in ("/", DEMO_VHOST)
        if _vhost_exists(mgmt, vhost) and not _has_tap_queue(mgmt, vhost)
    ]
    run = make_run(tmp_path)
    try:
        yield run
    finally:
        run.stop()
        if not demo_vhost_existed:
            # Its queues and tracing go with it.
            _once_the_broker_answers(lambda: _delete_vhost(mgmt, DEMO_VHOST))
        for vhost in untraced:
            # Every process this run started is gone: --force, whatever the
            # heartbeat its tap last wrote says.
            _once_the_broker_answers(
                lambda vhost=vhost: manage(run.env, "untrace", vhost, "--force")
            )


def _delete_vhost(mgmt, vhost: str) -> None:
    if _vhost_exists(mgmt, vhost):
        mgmt.delete_vhost(vhost)


def _once_the_broker_answers(step: Callable[[], object]) -> None:
    """`step`, tried again while the broker does not answer (another test may be
    restarting it): what this test switched on must not outlive it."""
    wait_until(
        lambda: step() or True,
        timeout=CLEAN_UP_WITHIN_S,
        interval=1.0,
        what="the broker to answer the clean-up",
        ignoring=(BrokerUnavailable, CommandFailed),
    )


def _log_in(page, run: Started) -> None:
    """The login form, with the name and password `make run` printed."""
    page.goto(run.base_url + "/")
    page.fill("input[name=username]", run.username)
    page.fill("input[name=password]", run.password)
    page.click("form[action$='/login/'] button[type=submit]")
    page.wait_for_selector("nav.mainnav")


def _open_live(page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Live", exact=True).click()
    page.wait_for_selector("#live-rows")


def _wait_for_a_screenful(page) -> None:
    """A dozen rows, and the bar's rates (they come with the socket's first status)."""
    wait_in_page(page, SCREENFUL, 12, timeout=30.0)


def _shoot(page, name: str) -> Path:
    """The visible window (the live table grows below it), kept with the test's artifacts
    and, when WARREN_README_SCREENSHOTS is set (`make screenshots`), for the README."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("WARREN_README_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS / f"{name}.png")
    return path


def test_it_shows_the_demos_first_flow_on_live_within_a_minute_of_make_demo(
    warren, browser, capsys
):
    run = warren
    context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="light")
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _log_in(page, run)

    demo = make_demo(run)
    try:
        _open_live(page)
        try:
            wait_in_page(
                page,
                DEMO_ROWS,
                [DEMO_VHOST, demo.started_us],
                timeout=WAIT_AT_MOST_S,
                every=0.1,
            )
        except AssertionError:
            raise AssertionError(
                f"no flow of {DEMO_VHOST} on Live {WAIT_AT_MOST_S:g} s after `make demo`\n"
                f"--- make run ---\n{run.output()}\n--- make demo ---\n{demo.output()}"
            ) from None
        took = time.monotonic() - demo.started_at
        with capsys.disabled():  # the figure in `make test`'s output too
            print(
                f"\n[first run] first flow of {DEMO_VHOST} on Live {took:.1f} s after `make demo`"
            )
        assert took < FIRST_FLOW_WITHIN_S, f"the first flow took {took:.1f} s"
        assert demo.process.poll() is None, demo.output()
        said = re.search(r"^Traced vhosts: (.*)$", demo.output(), re.MULTILINE)
        assert said and DEMO_VHOST in said[1].split(", "), demo.output()

        # The first flows as the user sees them, light and dark.
        _wait_for_a_screenful(page)
        _shoot(page, "first-run-live")
        dark = browser.new_context(
            viewport={"width": 1440, "height": 900},
            color_scheme="dark",
            storage_state=context.storage_state(),
        )
        try:
            dark_page = dark.new_page()
            dark_page.on("pageerror", lambda error: errors.append(str(error)))
            dark_page.goto(page.url)
            _wait_for_a_screenful(dark_page)
            _shoot(dark_page, "first-run-live-dark")
        finally:
            dark.close()
        assert errors == []
    finally:
        demo.stop()
        context.close()
