"""Overview charts, node page, tracing switch, plumbing toggle and the stream browser in
real headless Chromium, light and dark, at phone (390 px) and desk (1440 px) widths; the
screenshots land in test-artifacts/ for a person to look at."""

import time

import pytest
from django.urls import reverse
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import screenshot
from tests.console.helpers import wait_for_messages

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (390, 1440)


def _themed(page, theme):
    page.evaluate(f"window.localStorage.setItem('warren-theme', '{theme}')")


def _shoot_all(page, url, name, ready):
    """The page at each width and theme, with what makes it `ready` awaited each time."""
    for theme in ("light", "dark"):
        _themed(page, theme)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.goto("about:blank")  # a URL differing only by its #fragment would not load
            page.goto(url)
            page.wait_for_selector(ready)
            assert page.evaluate("document.documentElement.getAttribute('data-theme')") == theme
            screenshot(page, f"{name}-{theme}-{width}")


def _traffic(mgmt, vhost, queue, seconds=11.0):
    """A few messages a second for a while, so the broker has rates to sample."""
    stop = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < stop:
        mgmt.publish(vhost, "", queue, f"m{sent}", {"content_type": "text/plain"})
        sent += 1
        time.sleep(0.15)
    return sent


@pytest.fixture
def busy_queue(mgmt, scratch_vhost):
    mgmt.declare_queue(scratch_vhost, "orders")
    sent = _traffic(mgmt, scratch_vhost, "orders")
    wait_for_messages(mgmt, scratch_vhost, "orders", sent)
    return scratch_vhost


def test_it_draws_the_overview_charts_in_both_themes(page_as, superuser, live_server, busy_queue):
    page = page_as(superuser)
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    url = live_server.url + reverse("overview") + f"?vhost={busy_queue}&range=1m"
    page.goto(url)
    page.wait_for_selector("#chart-queued canvas", timeout=15_000)
    legend = page.locator("#chart-queued .u-legend").inner_text()
    assert "ready" in legend and "unacked" in legend and "total" in legend
    assert "Vhost " + busy_queue + " over time, last minute" in page.content()
    light_axis = page.evaluate("window.warrenTheme.color('--chart-axis')")
    page.click("[data-theme-toggle]")
    page.wait_for_selector("#chart-queued canvas")
    assert page.evaluate("window.warrenTheme.color('--chart-axis')") != light_axis
    assert errors == []
    _shoot_all(page, url, "overview-charts", "#chart-queued canvas")


def test_it_changes_the_range_of_a_queues_charts(page_as, superuser, live_server, busy_queue):
    page = page_as(superuser)
    page.goto(live_server.url + reverse("queue", args=[busy_queue, "orders"]))
    page.wait_for_selector("#chart-queued canvas", timeout=15_000)
    assert "Over time, last 10 minutes" in page.content()
    page.click(".chart-ranges >> text=1m")
    page.wait_for_selector("#chart-rates canvas, #chart-rates .chart-empty")
    assert "range=1m" in page.url and "Over time, last minute" in page.content()
    legend = page.locator("#chart-rates .u-legend").inner_text()
    assert "publish" in legend
    _shoot_all(page, page.url, "queue-charts", "#chart-queued canvas")


def test_it_shows_a_node_with_its_memory_and_listeners(page_as, superuser, live_server, mgmt):
    page = page_as(superuser)
    name = mgmt.nodes()[0]["name"]
    page.goto(live_server.url + reverse("nodes"))
    page.click(f"text={name}")
    page.wait_for_selector("#node-figures")
    assert page.locator(".memory-table tbody tr").count() >= 10
    assert page.locator("h1").inner_text().endswith(name)
    _shoot_all(page, page.url, "node", "#node-figures")
    _shoot_all(page, live_server.url + reverse("nodes"), "nodes", "#node-table")


def test_it_switches_tracing_from_the_vhosts_page(page_as, operator, live_server, scratch_vhost):
    from tracer.store import traced

    page = page_as(operator)
    page.goto(live_server.url + reverse("vhosts"))
    page.on("dialog", lambda dialog: dialog.accept())
    cell = page.locator(f'[data-vhost-tracing="{scratch_vhost}"]')
    button = cell.get_by_role("button", name=f"Trace vhost {scratch_vhost}")
    try:
        # The table lists every vhost from the management API and redraws itself every
        # 5 s; with the parallel runs' scratch vhosts coming and going it once had no
        # button after 10 s: a few redraws more, then what the page said.
        button.wait_for(timeout=30_000)
    except PlaywrightTimeout:
        screenshot(page, "vhosts-tracing-no-button")
        text = page.locator("main").inner_text()
        raise AssertionError(
            f"no Trace button for {scratch_vhost}; the page:\n{text[:4000]}"
        ) from None
    button.click()
    page.wait_for_selector(f"text=Warren traces vhost “{scratch_vhost}”")
    assert scratch_vhost in traced.wanted_vhosts([])
    assert "Warren traces" in page.locator(f'[data-vhost-tracing="{scratch_vhost}"]').inner_text()
    _shoot_all(page, page.url, "vhosts-tracing", "#vhost-table")


def test_it_browses_a_stream_from_its_page(page_as, superuser, live_server, mgmt, scratch_vhost):
    mgmt.declare_queue(scratch_vhost, "events", arguments={"x-queue-type": "stream"})
    for n in range(12):
        mgmt.publish(
            scratch_vhost, "", "events", f'{{"n": {n}}}', {"content_type": "application/json"}
        )
    wait_for_messages(mgmt, scratch_vhost, "events", 12)
    page = page_as(superuser)
    page.goto(live_server.url + reverse("queue", args=[scratch_vhost, "events"]))
    page.select_option("select[name=from]", "offset")
    page.fill("input[name=offset]", "4")
    page.select_option("#stream select[name=count]", "10")
    page.click("#stream button[type=submit]")
    page.wait_for_selector("[data-stream-summary]")
    heads = page.locator("#stream-results article.message strong").all_inner_texts()
    assert heads == [f"offset {n}" for n in range(4, 12)]
    assert mgmt.queue(scratch_vhost, "events")["messages"] == 12
    url = (
        live_server.url
        + reverse("queue_stream", args=[scratch_vhost, "events"])
        + "?from=first&count=10"
    )
    _shoot_all(page, url + "#stream", "stream-browser", "[data-stream-summary]")


def test_it_hides_and_shows_warrens_plumbing(page_as, superuser, live_server, mgmt, scratch_vhost):
    mgmt.declare_queue(scratch_vhost, "warren.tap")
    mgmt.bind(scratch_vhost, "amq.rabbitmq.trace", "warren.tap", routing_key="#")
    mgmt.declare_queue(scratch_vhost, "orders")
    page = page_as(superuser)
    page.goto(live_server.url + reverse("queues") + f"?vhost={scratch_vhost}")
    page.wait_for_selector("#queue-list")
    assert page.locator("#queue-list td.name a").all_inner_texts() == ["orders"]
    page.click("text=Show Warren's own queues")
    page.wait_for_selector("text=Hide them")
    assert "warren.tap" in page.locator("#queue-list td.name a").all_inner_texts()
    _shoot_all(page, page.url, "queues-plumbing", "#queue-list")
    page.goto(live_server.url + reverse("queue", args=[scratch_vhost, "warren.tap"]))
    assert page.locator("[data-plumbing]").count() == 1
    _shoot_all(page, page.url, "tap-queue", ".danger-zone")


def test_it_draws_an_exchanges_chart(page_as, superuser, live_server, busy_queue):
    page = page_as(superuser)
    url = live_server.url + reverse("exchange", args=[busy_queue, "amq.direct"])
    page.goto(url)
    page.wait_for_selector("#chart-rates canvas, #chart-rates .chart-empty", timeout=15_000)
    assert "Messages in and out" in page.content()
