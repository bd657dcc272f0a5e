"""Every page in headless Chromium, light and dark, on a phone (390×844) and a
desktop (1440×900): axe-core finds no serious or critical violation, the page
itself never scrolls sideways, and the keyboard reaches a visible focus.

A page joins by being listed in PAGES. test_it_lists_every_page walks the URL
configuration and fails on any URL name that is in neither PAGES nor NOT_PAGES,
so a new page cannot be left out; a NOT_PAGES entry that answers a GET with a
whole page fails too.

One browser and one tab for the module; `-n 2` at most.
"""

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from rabbit import amqp
from rabbit.brokers import default_broker
from tests.conftest import ARTIFACTS, _user
from tests.polling import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
VARIANTS = [("light", PHONE), ("dark", PHONE), ("light", DESKTOP), ("dark", DESKTOP)]
QUEUE = "orders.payment.authorisation-requests.europe-west"
EXCHANGE = "orders.payment"
CLIENT_NAME = "checkout service (every-page test)"
POLICY = "orders-length-limit"
STREAM = "orders.events"


@dataclass
class World:
    """What the pages show: broker objects of the module, rows of this test."""

    vhost: str
    connection: str
    node: str
    message_id: int = 0
    flow_id: int = 0
    job_id: int = 0
    broker_slug: str = ""


def _vhost(world: World) -> str:
    return quote(world.vhost, safe="")


@dataclass(frozen=True)
class Page:
    name: str
    url: Callable[[World], str]
    ready: str = ""  # a selector that says the page has drawn what it fetches
    anonymous: bool = False
    as_viewer: bool = False  # seen by a viewer instead of a superuser
    status: int = 200


# The pages, each with an address that shows real content.
PAGES = [
    Page("login", lambda w: reverse("login"), anonymous=True),
    Page("overview", lambda w: reverse("overview"), ready="#overview-stats"),
    Page("queues", lambda w: reverse("queues") + f"?vhost={_vhost(w)}"),
    Page("queue", lambda w: reverse("queue", args=[w.vhost, QUEUE])),
    Page("exchanges", lambda w: reverse("exchanges") + f"?vhost={_vhost(w)}"),
    Page("exchange", lambda w: reverse("exchange", args=[w.vhost, EXCHANGE])),
    Page("exchange_publish", lambda w: reverse("exchange_publish", args=[w.vhost, EXCHANGE])),
    Page(
        "topology",
        lambda w: reverse("topology") + f"?vhost={_vhost(w)}",
        ready="#graph[data-ready]",
    ),
    Page("nodes", lambda w: reverse("nodes")),
    Page("node", lambda w: reverse("node", args=[w.node])),
    Page("connections", lambda w: reverse("connections")),
    Page("connection", lambda w: reverse("connection", args=[w.connection])),
    Page("channels", lambda w: reverse("channels")),
    Page("vhosts", lambda w: reverse("vhosts")),
    Page("brokers", lambda w: reverse("brokers")),
    Page("broker_edit", lambda w: reverse("broker_edit", args=[w.broker_slug])),
    Page("audit_log", lambda w: reverse("audit_log")),
    Page("messages", lambda w: reverse("messages")),
    Page("message", lambda w: reverse("message", args=[w.message_id])),
    Page("flows", lambda w: reverse("flows")),
    Page("flow", lambda w: reverse("flow", args=[w.flow_id]), ready="svg.timeline"),
    Page("live_flows", lambda w: reverse("live_flows")),
    Page("live_messages", lambda w: reverse("live_messages")),
    Page("latency", lambda w: reverse("latency")),
    Page(
        "conversation",
        lambda w: reverse("conversation") + f"?message={w.message_id}",
        ready="svg.sequence",
    ),
    Page("replays", lambda w: reverse("replays")),
    Page("replay_new", lambda w: reverse("replay_new") + f"?message={w.message_id}"),
    Page("replay", lambda w: reverse("replay", args=[w.job_id])),
    Page("replay_item", lambda w: reverse("replay_item", args=[w.job_id, 0])),
    Page("queue_new", lambda w: reverse("queue_new") + f"?vhost={_vhost(w)}"),
    Page("exchange_new", lambda w: reverse("exchange_new") + f"?vhost={_vhost(w)}"),
    Page("users", lambda w: reverse("users")),
    Page("user", lambda w: reverse("user", args=["guest"])),
    Page("admin_vhosts", lambda w: reverse("admin_vhosts")),
    Page("admin_vhost", lambda w: reverse("admin_vhost", args=[w.vhost])),
    Page("policies", lambda w: reverse("policies")),
    Page("policy_new", lambda w: reverse("policy_new")),
    Page("policy_edit", lambda w: reverse("policy_edit", args=["policies", w.vhost, POLICY])),
    Page("feature_flags", lambda w: reverse("feature_flags")),
    Page("admin_cluster", lambda w: reverse("admin_cluster")),
    Page("queue_stream", lambda w: reverse("queue_stream", args=[w.vhost, STREAM])),
    Page("definitions", lambda w: reverse("definitions")),
    Page("imports", lambda w: reverse("imports")),
    Page("error_404", lambda w: "/no-such-page/", status=404),
    # an operator's page asked for by a viewer
    Page("error_403", lambda w: reverse("replay_new"), as_viewer=True, status=403),
]

# URL names that answer no page of their own: actions (POST, then a redirect),
# JSON, fragments swapped into a page. The value says which.
NOT_PAGES = {
    "logout": "action",
    "queue_peek": "fragment",
    "queue_purge": "action",
    "queue_delete": "action",
    "queue_move": "action",
    "exchange_delete": "action",
    "binding_add": "action",
    "binding_remove": "action",
    "topology_data": "JSON",
    "connection_close": "action",
    "broker_add": "action",
    "broker_delete": "action",
    "message_body": "fragment",
    "latency_data": "JSON",
    "replay_progress": "fragment",
    "replay_cancel": "action",
    "replay_resume": "action",
    "replay_send": "action",
    "overview_charts": "JSON",
    "queue_charts": "JSON",
    "exchange_charts": "JSON",
    "tracing_switch": "action",
    "user_update": "action",
    "user_delete": "action",
    "user_limits": "action",
    "user_permission_set": "action",
    "user_permission_clear": "action",
    "user_topic_permission_set": "action",
    "user_topic_permission_clear": "action",
    "admin_vhost_limits": "action",
    "admin_vhost_delete": "action",
    "policy_delete": "action",
    "feature_flag_enable": "action",
    "definitions_export": "a JSON file",
    "definitions_import": "action (then the Definitions page shows the preview)",
    "definitions_import_apply": "action",
    "definitions_import_discard": "action",
    "imports_upload": "action",
    "metrics": "Prometheus text",
}


def _url_names(patterns) -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _url_names(entry.url_patterns)
        elif isinstance(entry, URLPattern) and entry.name:
            yield entry.name, entry


# --- the world the pages show ---------------------------------------------------


@pytest.fixture(scope="module")
def broker_world() -> Iterator[tuple[str, str]]:
    """A vhost with a long-named queue bound to a topic exchange, and a named client
    connection consuming from it. Module scope: the broker is not flushed."""
    client = default_broker().client()
    vhost = f"warren-every-page-{uuid.uuid4().hex[:6]}"
    client.create_vhost(vhost, description="Warren every-page browser test")
    client.declare_exchange(vhost, EXCHANGE, "topic")
    client.declare_queue(vhost, QUEUE, arguments={"x-max-length": 100000})
    client.declare_queue(vhost, "unbound.audit-trail")
    client.declare_queue(vhost, STREAM, arguments={"x-queue-type": "stream"})
    client.bind(vhost, EXCHANGE, QUEUE, routing_key="payment.#")
    client.put(
        f"policies/{quote(vhost, safe='')}/{POLICY}",
        {"pattern": "^orders\\.", "definition": {"max-length": 100000}, "apply-to": "queues"},
    )
    stop = threading.Event()
    ready = threading.Event()

    def consume() -> None:
        connection = amqp.blocking_connection(
            default_broker().amqp_url(), vhost=vhost, name=CLIENT_NAME
        )
        channel = connection.channel()
        channel.basic_consume(QUEUE, lambda *args: None, consumer_tag="checkout-1")
        ready.set()
        while not stop.is_set() and connection.is_open:
            connection.process_data_events(time_limit=0.2)
        if connection.is_open:
            connection.close()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    assert ready.wait(10)
    found = wait_until(
        lambda: [
            c["name"]
            for c in client.get(f"vhosts/{quote(vhost, safe='')}/connections") or []
            if (c.get("client_properties") or {}).get("connection_name") == CLIENT_NAME
        ],
        check=lambda names: len(names) == 1,
        timeout=15,
        what="the test's client connection in the management API",
    )
    try:
        yield vhost, found[0]
    finally:
        stop.set()
        worker.join(5)
        client.delete_vhost(vhost)


def _captured_rows(world: World, operator) -> None:
    """An RPC call whose request is published and delivered in the same instant
    (so the timeline has labels at one time), and a dry-run replay of its request."""
    from replay import engine, jobs, spec
    from tests.replay.helpers import operator_request
    from tests.tracer.frames import rpc_call
    from tracer.models import Flow, Message
    from tracer.store import storage
    from tracer.times import now_us

    _, events = rpc_call(
        at=0,
        vhost=world.vhost,
        service=QUEUE,
        wait=0,
        back=0,
        body=b'{"order": 1042, "items": [{"sku": "A-1", "qty": 2}], "note": "<b>gift</b>"}',
    )
    shift = now_us() - 30_000_000 - events[0].captured_us
    for event in events:
        event.captured_us += shift
    storage.store_batch(events, timeout_s=30)
    request = Message.objects.filter(vhost=world.vhost, event="publish").order_by("id").first()
    assert request is not None
    world.message_id = request.id
    flow = Flow.objects.filter(vhost=world.vhost).order_by("-id").first()
    assert flow is not None
    world.flow_id = flow.id
    job = jobs.create_job(
        operator_request(operator), spec.from_api({"message_ids": [request.id], "dry_run": True})
    )
    engine.run_job(job.id)
    world.job_id = job.id


@pytest.fixture
def world(broker_world, transactional_db) -> World:
    from console.models import Broker

    vhost, connection = broker_world
    node = default_broker().client().overview()["node"]
    world = World(vhost=vhost, connection=connection, node=node)
    operator = _user("otto-every-page", "operator")
    _captured_rows(world, operator)
    Broker.objects.create(
        slug="second-cluster",
        name="Second cluster",
        management_url="http://127.0.0.1:15672/",
        amqp_url="amqp://127.0.0.1:5672/",
        username="guest",
        password="guest",
    )
    world.broker_slug = "second-cluster"
    return world


# --- the browser ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tab(browser):
    """One tab for the module; CSP bypassed so axe-core can be injected."""
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _log_in(tab, live_server, user) -> None:
    context = tab.context
    context.clear_cookies()
    if user is None:
        return
    client = Client()
    client.force_login(user)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )


SERIOUS = """async () => {
  const result = await window.axe.run(document, { resultTypes: ["violations"] });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 4).map((n) => n.target.join(" ") + " :: " + n.failureSummary),
    }));
}"""

OVERFLOW = """() => {
  const width = window.innerWidth;
  const wide = [];
  if (document.scrollingElement.scrollWidth > width) {
    for (const el of document.body.querySelectorAll("*")) {
      const box = el.getBoundingClientRect();
      if (box.right > width + 1 && box.width > 0) {
        const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + "." + el.className;
        wide.push(name + " right=" + Math.round(box.right));
      }
      if (wide.length > 6) break;
    }
  }
  return { scrollWidth: document.scrollingElement.scrollWidth, width, wide };
}"""

# Every visible control can be reached with Tab (no tabindex=-1 on one that acts).
UNREACHABLE = """() => {
  const controls = document.querySelectorAll(
    "a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button]");
  return [...controls]
    .filter((el) => el.getClientRects().length && !el.disabled && el.tabIndex < 0)
    .map((el) => el.outerHTML.slice(0, 120));
}"""

# A name column squeezed so narrow that a name wraps a character or two a line
# (cells that never wrap, cut with an ellipsis like the live tables', are left out).
SQUEEZED_NAMES = """() => [...document.querySelectorAll("td.name")]
  .filter((td) => td.getClientRects().length && td.textContent.trim().length >= 12)
  .filter((td) => getComputedStyle(td).whiteSpace !== "nowrap")
  .filter((td) => td.getBoundingClientRect().width < 90)
  .map((td) => {
    const width = Math.round(td.getBoundingClientRect().width);
    return td.textContent.trim().slice(0, 40) + " " + width + "px";
  })
"""

# A tile's figure and unit on one line ("417.1 KiB", never "417.1" over "KiB").
WRAPPED_FIGURES = """() => [...document.querySelectorAll(".tile .value:not(.small)")]
  .filter((el) => el.getClientRects().length)
  .filter((el) => {
    const style = getComputedStyle(el);
    return el.getBoundingClientRect().height > parseFloat(style.fontSize) * 1.9;
  })
  .map((el) => el.textContent.trim())
"""

FOCUS_SHOWN = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const outlined = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  return { tag: el.outerHTML.slice(0, 100), shown: outlined || style.boxShadow !== "none" };
}"""


def _check(tab, url: str, theme: str, viewport: dict, page: Page) -> list[str]:
    problems = []
    tab.set_viewport_size(viewport)
    tab.emulate_media(color_scheme=theme)
    response = tab.goto(url, wait_until="load")
    where = f"{page.name} {theme} {viewport['width']}px"
    if response is None or response.status != page.status:
        return [f"{where}: HTTP {response.status if response else None}"]
    if page.ready:
        tab.wait_for_selector(page.ready, state="attached")
    if tab.evaluate("document.documentElement.dataset.theme") != theme:
        problems.append(f"{where}: data-theme is not {theme}")
    tab.add_script_tag(path=str(AXE))
    for violation in tab.evaluate(SERIOUS):
        problems.append(f"{where}: axe {json.dumps(violation)}")
    for name in tab.evaluate(SQUEEZED_NAMES):
        problems.append(f"{where}: a name column is squeezed: {name}")
    for figure in tab.evaluate(WRAPPED_FIGURES):
        problems.append(f"{where}: a figure wraps over two lines: {figure}")
    overflow = tab.evaluate(OVERFLOW)
    if overflow["scrollWidth"] > overflow["width"]:
        problems.append(f"{where}: the page scrolls sideways {overflow}")
    if theme == "light":
        for html in tab.evaluate(UNREACHABLE):
            problems.append(f"{where}: not reachable with Tab: {html}")
        tab.evaluate("document.activeElement && document.activeElement.blur()")
        for _ in range(8):
            tab.keyboard.press("Tab")
            focused = tab.evaluate(FOCUS_SHOWN)
            if focused and not focused["shown"]:
                problems.append(f"{where}: focus not visible on {focused['tag']}")
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"every-page-{page.name}-{theme}-{viewport['width']}.png"))
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_it_is_readable_and_accessible_light_and_dark_phone_and_desktop(
    page, tab, live_server, world, superuser, viewer
):
    _log_in(tab, live_server, None if page.anonymous else viewer if page.as_viewer else superuser)
    url = live_server.url + page.url(world)
    problems = []
    for theme, viewport in VARIANTS:
        problems.extend(_check(tab, url, theme, viewport, page))
    assert problems == [], "\n".join(problems)


def test_it_lists_every_page(superuser, world):
    names = {name for name, _ in _url_names(get_resolver().url_patterns)}
    listed = {page.name for page in PAGES} | set(NOT_PAGES)
    missing = sorted(name for name in names - listed if not name.startswith("api_"))
    assert missing == [], (
        f"URL names in no list: {missing}. A page goes into PAGES (with an address that "
        "shows content); an action, a fragment or JSON into NOT_PAGES."
    )
    # A NOT_PAGES entry that answers a GET with a whole page belongs in PAGES.
    client = Client()
    client.force_login(superuser)
    samples = {
        "vhost": world.vhost,
        "name": QUEUE,
        "message_id": world.message_id,
        "job_id": world.job_id,
        "slug": world.broker_slug,
        "position": 0,
    }
    for name, entry in _url_names(get_resolver().url_patterns):
        if name not in NOT_PAGES:
            continue
        kwargs = {key: samples[key] for key in entry.pattern.converters if key in samples}
        if set(kwargs) != set(entry.pattern.converters):
            continue
        path = reverse(name, kwargs=kwargs)
        response = client.get(path)
        whole_page = response.status_code == 200 and b"<!doctype html>" in response.content[:200]
        assert not whole_page, f"{name} ({path}) answers GET with a page: list it in PAGES"
