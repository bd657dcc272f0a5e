"""Screenshots for the README: Live flows, Flow timeline, Sequence view and Latency
under the seed workloads, then dark mode (Topology, Latency) and a phone (Flow, the
menu). Not part of the suite (its name is not test_*): `make screenshots` runs it
to refresh docs/screenshots/ (it takes about two minutes)."""

import secrets
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from benchmarks.live import session_cookie, start_server, start_tap
from rabbit.brokers import default_broker
from tests.conftest import screenshot
from tests.live.browsing import wait_live
from tracer.models import Flow, Message
from workloads.runner import WORKLOADS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("roles"),
]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DEMO = {
    "fibonacci": 6,
    "weather": 3,
    "direct_reply_to": 2,
    "control_centre": 2,
    "slow_failing": 2,
    "pipes_and_filters": 1,
}
TRAFFIC_S = 50


def _save(page, name):
    path = screenshot(page, name)
    DOCS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, DOCS / f"{name}.png")
    return path


def _shoot(page, name):
    """The visible window only: a live table keeps growing below it."""
    page.screenshot(path=str(DOCS / f"{name}.png"))


@pytest.fixture
def demo_vhost(mgmt):
    """A short-named scratch vhost: it shows in every row of the pictures."""
    name = f"demo-{secrets.token_hex(2)}"
    mgmt.create_vhost(name, description="Warren screenshots (temporary)")
    yield name
    mgmt.delete_vhost(name)


def _dark_and_phone(browser, base, viewer, vhost, flow):
    """Dark mode on a desktop (the topology with its RPC routes, Latency) and a phone
    (the Flow timeline, the open menu), light and dark."""
    quoted = quote(vhost, safe="")
    dark = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="dark")
    dark.add_cookies([session_cookie(viewer, base)])
    page = dark.new_page()
    page.goto(f"{base}/topology/?vhost={quoted}")
    page.wait_for_selector("#graph[data-ready=true]")
    page.check("#graph-default-routes")
    time.sleep(0.5)
    _shoot(page, "dark-topology")
    page.goto(f"{base}/latency/?vhost={quoted}&window=5m")
    page.wait_for_selector("#chart-series canvas")
    page.locator(".latency-grid").scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -80)")  # the grid's top under the sticky bar
    time.sleep(0.5)
    _shoot(page, "dark-latency")
    dark.close()

    for scheme in ("light", "dark"):
        phone = browser.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            color_scheme=scheme,
        )
        phone.add_cookies([session_cookie(viewer, base)])
        page = phone.new_page()
        page.goto(f"{base}/flows/{flow.id}/")
        page.wait_for_selector("svg.timeline")
        _shoot(page, f"phone-flow-{scheme}")
        if scheme == "dark":
            page.click("[data-menu-toggle]")
            _shoot(page, "phone-menu-dark")
        phone.close()


def test_it_takes_the_readme_screenshots_under_demo_traffic(browser, demo_vhost, viewer):
    scratch_vhost = demo_vhost
    server, base = start_server()
    stop = threading.Event()
    threads = []
    tap = None
    try:
        tap = start_tap([scratch_vhost], args=["--rpc-timeout", "4"])
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.add_cookies([session_cookie(viewer, base)])
        page = context.new_page()
        vhost = quote(scratch_vhost, safe="")
        page.goto(f"{base}/live/?vhost={vhost}")
        wait_live(page)
        amqp_url = default_broker().amqp_url()
        for name, rate in DEMO.items():
            thread = threading.Thread(
                target=WORKLOADS[name].run_forever,
                args=(amqp_url, scratch_vhost, rate, stop),
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        time.sleep(TRAFFIC_S)

        assert page.locator("#live-rows tr.live-row").count() >= 20
        DOCS.mkdir(parents=True, exist_ok=True)
        _shoot(page, "live-flows")

        flow = (
            Flow.objects.filter(
                vhost=scratch_vhost,
                status="complete",
                service="rpc_queue",
                service_ms__gt=8,
                queue_wait_ms__gt=0.2,
            )
            .exclude(reply_delivered_at=None)
            .order_by("-started_at")
            .first()
        )
        assert flow is not None
        page.goto(f"{base}/flows/{flow.id}/")
        page.wait_for_selector("svg.timeline")
        _shoot(page, "flow")
        _dark_and_phone(browser, base, viewer, scratch_vhost, flow)

        first_hop = (
            Message.objects.filter(
                vhost=scratch_vhost, event="publish", routing_key="pipeline.validate"
            )
            .order_by("-id")[5:6]
            .get()
        )
        page.goto(f"{base}/conversation/?message={first_hop.id}")
        page.wait_for_selector("svg.sequence")
        assert page.locator("svg.sequence .lane").count() >= 8
        _save(page, "sequence")

        page.goto(f"{base}/latency/?vhost={vhost}&window=5m")
        page.wait_for_selector("#chart-series canvas")
        page.wait_for_selector("#chart-histogram canvas")
        assert page.locator("tr[data-service]").count() >= 4
        time.sleep(0.5)
        _save(page, "latency")
        context.close()
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
        if tap is not None:
            tap.stop()
        server.stop()
