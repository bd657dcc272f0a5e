"""The Latency page's figures in Chromium, light and dark, at desktop and phone width:
which rule named each service, late replies beside timeouts, calls a second over the
active minutes, and the window the figures cover — readable, nothing off the edge."""

import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.browser.test_admin_pages import AXE, SERIOUS, SIDEWAYS
from tests.conftest import ARTIFACTS, unique_name
from tests.live.events import rpc_call
from tracer.store import storage
from tracer.times import now_us

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1440, "height": 900}


def _traffic(vhost):
    now = now_us()
    calls = [
        rpc_call(
            vhost,
            routing_key="celery",
            headers={"task": ("shop.invoice", "shop.ship")[k % 2]},
            latency_ms=8 + k,
            start_us=now - 50_000_000 + k * 1_000_000,
        )[1]
        for k in range(40)
    ]
    calls.append(rpc_call(vhost, routing_key="celery", headers={"task": "shop.ship"},
                          latency_ms=95_000, start_us=now - 200_000_000)[1])  # fmt: skip
    calls += [rpc_call(vhost, properties={"type": "GetQuote"}, latency_ms=3)[1] for _ in range(5)]
    for call in calls:
        storage.store_batch(call, timeout_s=30)


@pytest.fixture
def page(browser, live_server, viewer):
    """A viewer's page; CSP bypassed only so that axe-core can be injected."""
    client = Client()
    client.force_login(viewer)
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
    )
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def test_it_shows_the_service_rules_late_replies_and_the_window(page, live_server):
    vhost = unique_name("lat")
    _traffic(vhost)
    url = f"{live_server.url}{reverse('latency')}?window=15m&vhost={vhost}"
    problems = []
    for theme in ("light", "dark"):
        for viewport in (DESKTOP, PHONE):
            page.set_viewport_size(viewport)
            page.emulate_media(color_scheme=theme)
            assert page.goto(url).status == 200
            where = f"{theme} {viewport['width']}"
            ship = page.locator('tr[data-service="shop.ship"]')
            cells = ship.locator("td").all_inner_texts()
            assert cells[1] == "Celery task header", cells
            assert cells[5] == "1" and cells[6] == "1", cells  # one timeout, and it came late
            assert "95" not in " ".join(cells[7:12])  # its 95 s are in no latency figure
            quote = page.locator('tr[data-service="GetQuote"] td').nth(1).inner_text()
            assert quote == "type property"
            window = page.locator(".window-span").inner_text()
            assert re.fullmatch(
                r"Figures for \d{4}-\d\d-\d\d \d\d:\d\d:\d\d – \d\d:\d\d:\d\d UTC", window
            )
            assert page.locator(".latency-tiles").get_by_text(re.compile(r"a second over")).count()
            page.add_script_tag(path=str(AXE))
            problems += [f"{where}: {v}" for v in page.evaluate(SERIOUS)]
            sideways = page.evaluate(SIDEWAYS)
            if sideways["by"] > 0:
                problems.append(f"{where}: scrolls sideways by {sideways}")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(
                path=str(ARTIFACTS / f"latency-figures-{theme}-{viewport['width']}.png"),
                full_page=True,
            )
    assert problems == [], "\n".join(problems)
