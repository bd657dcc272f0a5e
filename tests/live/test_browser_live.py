"""Live flows and Latency in headless Chromium, fed by the real tap and a seed workload.

Daphne serves the console (WebSockets need an ASGI server) and `manage.py tap`
captures a scratch vhost, both as subprocesses on the test database.
"""

import re
import threading
import time
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from benchmarks.live import session_cookie, start_server, start_tap
from rabbit.brokers import default_broker
from tests.busy_machine import busy_machine
from tests.conftest import screenshot
from tests.live.browsing import LIVE, wait_in_page, wait_live
from tests.live.proxy import TcpProxy
from tests.polling import wait_until
from workloads.runner import run_bounded

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("roles"),
]


@pytest.fixture
def stack(scratch_vhost):
    """(base URL, tap) with the server and the tap running on the scratch vhost."""
    server, base = start_server()
    try:
        tap = start_tap([scratch_vhost])
    except Exception:
        server.stop()
        raise
    yield base, tap
    tap.stop()
    server.stop()


@pytest.fixture
def open_page(browser):
    contexts = []

    def open_as(user, base):
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.add_cookies([session_cookie(user, base)])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.errors = []
        page.on("console", lambda msg: msg.type == "error" and page.errors.append(msg.text))
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        return page

    yield open_as
    for context in contexts:
        context.close()


def _in_background(work):
    outcome = {}

    def run():
        try:
            outcome["result"] = work()
        except Exception as error:  # noqa: BLE001 - reported by the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_it_streams_a_workloads_flows_within_two_seconds_and_shows_their_latency(
    stack, open_page, viewer, scratch_vhost
):
    base, _ = stack
    page = open_page(viewer, base)
    page.goto(f"{base}/live/?vhost={quote(scratch_vhost, safe='')}")
    wait_live(page)

    amqp_url = default_broker().amqp_url()
    thread, outcome = _in_background(
        lambda: run_bounded("fibonacci", amqp_url, scratch_vhost, calls=12, rate=6)
    )
    thread.join(60)
    assert "error" not in outcome, outcome.get("error")
    correlation_ids = [call.correlation_id for call in outcome["result"].calls]
    assert len(correlation_ids) == 12

    # Every call is on the page within two seconds of the workload's last reply...
    started = time.monotonic()
    wait_in_page(
        page,
        "ids => ids.every(id => document.getElementById('live-rows').textContent.includes(id))",
        correlation_ids,
        timeout=2.0,
    )
    assert time.monotonic() - started < 2.0
    # ...and each row came within two seconds of the tap stamping its event.
    delays = page.evaluate("window.WarrenLive.delays")
    assert delays and max(delays) < 2_000
    wait_in_page(page, "n => document.querySelectorAll('#live-rows .pill.ok').length >= n", 12)
    rows = page.locator("#live-rows tr.live-row")
    assert rows.count() == 12
    assert "rpc_queue" in rows.first.inner_text()
    rates = page.locator("#live-rates").inner_text()
    assert "flows/s captured" in rates
    screenshot(page, "live-flows")

    # A filter applies without a reload: htmx brings the matching stored rows, the
    # socket switches its subscription.
    chosen = correlation_ids[3]
    page.fill("input[name=correlation_id]", chosen)
    page.press("input[name=correlation_id]", "Enter")
    wait_in_page(page, "() => document.querySelectorAll('#live-rows tr.live-row').length === 1")
    assert chosen in rows.first.inner_text()
    assert f"correlation_id={chosen}" in page.url
    subscribed = "() => document.getElementById('live-bar').dataset.filter || ''"
    assert wait_in_page(page, subscribed) == f"vhost {scratch_vhost}, correlation id {chosen}"

    row = rows.first
    row.locator("td").nth(5).click()  # a click on the row opens the flow's timeline
    page.wait_for_url(re.compile(r"/flows/\d+/$"))
    assert page.locator("h1").inner_text().startswith("Flow #")

    # The message tail: every publish and delivery of a call, as it happens.
    page.goto(f"{base}/live/messages/?vhost={quote(scratch_vhost, safe='')}")
    wait_live(page)
    before = page.locator("#live-rows tr.live-row").count()
    result = run_bounded("fibonacci", amqp_url, scratch_vhost, calls=2)
    wait_in_page(
        page,
        "ids => ids.every(id => document.getElementById('live-rows').textContent.includes(id))",
        [call.correlation_id for call in result.calls],
        timeout=3.0,
    )
    wait_in_page(
        page, "n => document.querySelectorAll('#live-rows tr.live-row').length >= n", before + 8
    )
    assert "queue rpc_queue" in page.locator("#live-rows").inner_text()

    page.goto(f"{base}/latency/?vhost={quote(scratch_vhost, safe='')}&window=15m")
    service = page.locator('tr[data-service="rpc_queue"]')
    cells = service.locator("td")
    headings = page.locator("table.latency-table thead th").all_inner_texts()
    assert cells.nth(headings.index("Calls")).inner_text() == "14"
    for heading in ("p50", "p95", "p99"):
        assert re.fullmatch(r"[\d.,]+ ms", cells.nth(headings.index(heading)).inner_text().strip())
    page.wait_for_selector("#chart-series canvas")
    page.wait_for_selector("#chart-histogram canvas")
    screenshot(page, "latency")
    assert page.errors == []


def test_it_says_the_live_feed_is_interrupted_while_redis_is_away_and_reconnects(
    open_page, viewer, scratch_vhost, settings
):
    """Redis (behind a forwarder) goes away under the server and the tap, then returns."""
    redis = urlsplit(settings.REDIS_URL)
    proxy = TcpProxy(redis.port or 6379).start()
    env = {"REDIS_URL": urlunsplit(redis._replace(netloc=f"127.0.0.1:{proxy.port}"))}
    server, base = start_server(env=env)
    tap = None
    try:
        tap = start_tap([scratch_vhost], env=env)
        page = open_page(viewer, base)
        page.goto(f"{base}/live/?vhost={quote(scratch_vhost, safe='')}")
        try:
            wait_live(page)
        except AssertionError:
            raise AssertionError("never live; the server said:\n" + server.output()) from None
        banner = page.locator("#live-interrupted")

        proxy.stop()
        try:
            wait_in_page(
                page, "() => !document.getElementById('live-interrupted').hidden", None, 10
            )
        except AssertionError:
            raise AssertionError(
                "no interruption shown; the server said:\n" + server.output()
            ) from None
        assert "Live feed interrupted" in banner.inner_text()
        assert page.locator("#live-state").get_attribute("data-state") == "down"

        proxy.start()
        # The page reconnects by itself (backoff up to 15 s). Its first socket can
        # still meet the server's own Redis connections coming back, and say so
        # once more before it stays: wait until it has been live for 2 s.
        held_since = [None]

        def steadily_live():
            if not page.evaluate(LIVE):
                held_since[0] = None
                return False
            held_since[0] = held_since[0] or time.monotonic()
            return time.monotonic() - held_since[0] >= 2.0

        wait_until(steadily_live, timeout=40, what="the live page back and staying live")
        assert banner.is_hidden()
        # And the stream flows again: a call made now appears.
        amqp_url = default_broker().amqp_url()
        result = run_bounded("fibonacci", amqp_url, scratch_vhost, calls=1)
        (call,) = result.calls
        wait_in_page(
            page,
            "id => document.getElementById('live-rows').textContent.includes(id)",
            call.correlation_id,
            timeout=5,
        )
        assert page.errors == [] or all("WebSocket" in error for error in page.errors)
    finally:
        if tap is not None:
            tap.stop()
        server.stop()
        proxy.stop()


def test_it_says_why_nothing_comes_while_indexing_gives_way_to_a_busy_machine(
    open_page, viewer, scratch_vhost
):
    """The tap's heartbeat carries the pause (tracer/tap/give_way.py) to the Live bar."""
    server, base = start_server()
    tap = None
    paused_text = "() => document.getElementById('live-delay').textContent"
    try:
        tap = start_tap([scratch_vhost], env={"WARREN_INDEX_PAUSE_MAX": "60"})
        page = open_page(viewer, base)
        page.goto(f"{base}/live/?vhost={quote(scratch_vhost, safe='')}")
        wait_live(page)
        assert "indexing paused" not in page.evaluate(paused_text)
        with busy_machine():
            try:
                wait_in_page(
                    page,
                    f"() => ({paused_text})().includes('indexing paused: the machine is busy')",
                    None,
                    30,
                )
            except AssertionError:
                raise AssertionError("no pause shown; the tap said:\n" + tap.output()) from None
            assert re.search(r"· [\d.]+ s behind", page.evaluate(paused_text))
            screenshot(page, "live-indexing-paused")
            for width, scheme in ((360, "light"), (390, "dark"), (1440, "dark")):
                page.set_viewport_size({"width": width, "height": 844})
                page.emulate_media(color_scheme=scheme)
                assert page.locator("#live-delay").is_visible()
                box = page.locator("#live-delay").bounding_box()
                bar = page.locator(".live-bar").bounding_box()
                assert box is not None and bar is not None
                assert box["x"] + box["width"] <= bar["x"] + bar["width"]  # inside its bar
                screenshot(page, f"live-indexing-paused-{width}-{scheme}")
        wait_in_page(page, f"() => !({paused_text})().includes('indexing paused')", None, 30)
        assert page.errors == []
    finally:
        if tap is not None:
            tap.stop()
        server.stop()
