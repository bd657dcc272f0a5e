"""Readable everywhere, in headless Chromium: the theme toggle, the phone menu,
the Flow timeline's labels and the topology graph, checked by what the browser
lays out (bounding boxes, computed colours), light and dark."""

import uuid

import pytest
from django.urls import reverse

from rabbit.brokers import default_broker
from tests.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _theme(page) -> str:
    return page.evaluate("document.documentElement.dataset.theme")


def test_it_follows_the_system_theme_and_remembers_the_toggle(page_as, viewer, live_server):
    page = page_as(viewer)
    # What the page's theme is when <body> first appears: set before any paint.
    page.add_init_script(
        """new MutationObserver((changes, observer) => {
             if (!document.body) return;
             window.themeAtFirstBody = document.documentElement.dataset.theme || "unset";
             observer.disconnect();
           }).observe(document, { childList: true, subtree: true });"""
    )
    page.emulate_media(color_scheme="dark")
    page.goto(live_server.url + reverse("queues"))
    assert _theme(page) == "dark"
    assert page.evaluate("window.themeAtFirstBody") == "dark"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 19, 26)"

    toggle = page.locator("[data-theme-toggle]")
    assert toggle.get_attribute("aria-pressed") == "true"
    toggle.click()
    assert _theme(page) == "light"
    assert toggle.get_attribute("aria-pressed") == "false"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(245, 246, 248)"

    # Remembered over the system's preference, from the first paint on.
    page.reload()
    assert page.evaluate("window.themeAtFirstBody") == "light"
    page.goto(live_server.url + reverse("exchanges"))
    assert _theme(page) == "light"
    toggle = page.locator("[data-theme-toggle]")
    toggle.click()
    page.reload()
    assert page.evaluate("window.themeAtFirstBody") == "dark"


def test_it_folds_the_navigation_into_a_keyboard_menu_on_a_phone(page_as, viewer, live_server):
    page = page_as(viewer)
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(live_server.url + reverse("queues"))
    nav = page.locator("nav.mainnav")
    button = page.locator("[data-menu-toggle]")
    assert not nav.is_visible()
    assert button.get_attribute("aria-expanded") == "false"

    for _ in range(6):  # brand, theme, menu: the menu button within a few Tabs
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.hasAttribute('data-menu-toggle')"):
            break
    assert page.evaluate("document.activeElement.hasAttribute('data-menu-toggle')")
    page.keyboard.press("Enter")
    assert button.get_attribute("aria-expanded") == "true"
    assert nav.is_visible()
    link = nav.locator("a", has_text="Latency")
    box = link.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    assert page.locator(".who select[name=vhost]").is_visible()
    select_box = page.locator(".who select[name=vhost]").bounding_box()
    assert select_box is not None and select_box["width"] >= 200  # not cut to two letters
    screenshot(page, "phone-menu-open")

    page.keyboard.press("Escape")
    assert button.get_attribute("aria-expanded") == "false"
    assert not nav.is_visible()
    assert page.evaluate("document.activeElement.hasAttribute('data-menu-toggle')")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 360


LABEL_BOXES = """() => [...document.querySelectorAll("svg.timeline text")].map((t) => {
  const b = t.getBoundingClientRect();
  return { text: t.textContent, x1: b.left, x2: b.right, y1: b.top, y2: b.bottom };
})"""


def _overlaps(boxes):
    clashes = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if a["x1"] < b["x2"] and b["x1"] < a["x2"] and a["y1"] < b["y2"] and b["y1"] < a["y2"]:
                clashes.append((a["text"], b["text"]))
    return clashes


def test_it_never_overlaps_timeline_labels_at_one_time(page_as, viewer, live_server):
    from tests.tracer.frames import rpc_call
    from tracer.models import Flow
    from tracer.store import storage
    from tracer.times import now_us

    vhost = f"warren-timeline-{uuid.uuid4().hex[:6]}"
    # published and delivered at once, replied and reply delivered at once
    _, events = rpc_call(at=0, vhost=vhost, wait=0, work=40, back=0)
    shift = now_us() - 10_000_000 - events[0].captured_us
    for event in events:
        event.captured_us += shift
    storage.store_batch(events, timeout_s=30)
    flow = Flow.objects.get(vhost=vhost)

    page = page_as(viewer)
    for width in (390, 1440):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(live_server.url + reverse("flow", args=[flow.id]))
        boxes = page.evaluate(LABEL_BOXES)
        assert len(boxes) == 8  # four marks: a name and a time each
        assert _overlaps(boxes) == [], width
        assert page.evaluate("document.scrollingElement.scrollWidth") <= width
        # The heading's text keeps clear of its card's edges.
        gap = page.evaluate(
            """() => {
                 const heading = [...document.querySelectorAll("h2")]
                   .find((h) => h.textContent.startsWith("Every event"));
                 const range = document.createRange();
                 range.selectNodeContents(heading);
                 const text = range.getBoundingClientRect();
                 const card = heading.closest(".card").getBoundingClientRect();
                 return { left: text.left - card.left, top: text.top - card.top };
               }"""
        )
        assert gap["left"] >= 12 and gap["top"] >= 10, gap
        screenshot(page, f"flow-timeline-{width}")


@pytest.fixture
def busy_vhost():
    """Exchanges bound in a chain (amq.topic included), and a dozen unbound queues."""
    client = default_broker().client()
    vhost = f"warren-graph-{uuid.uuid4().hex[:6]}"
    client.create_vhost(vhost, description="Warren topology browser test")
    client.declare_exchange(vhost, "orders", "topic")
    client.declare_exchange(vhost, "orders.audit", "fanout")
    client.declare_queue(vhost, "orders.created.europe")
    client.declare_queue(vhost, "audit.log")
    client.bind(vhost, "orders", "orders.created.europe", routing_key="order.created.eu")
    client.bind(vhost, "orders", "orders.audit", destination_type="e", routing_key="#")
    client.bind(vhost, "orders.audit", "audit.log")
    client.bind(vhost, "amq.topic", "audit.log", routing_key="audit.#")
    for number in range(12):
        client.declare_queue(vhost, f"rpc.worker-{number:02d}.requests")
    yield vhost
    client.delete_vhost(vhost)


NODE_BOXES = """() => window.warrenGraph.nodes(":visible").filter((n) => !n.isParent())
  .map((n) => ({
  id: n.id(),
  body: n.boundingBox({ includeLabels: false, includeOverlays: false }),
  label: n.boundingBox({ includeNodes: false, includeEdges: false, includeOverlays: false }),
}))"""


def _box_clash(a, b) -> bool:
    return a["x1"] < b["x2"] and b["x1"] < a["x2"] and a["y1"] < b["y2"] and b["y1"] < a["y2"]


def test_it_draws_a_readable_topology(page_as, viewer, live_server, busy_vhost):
    page = page_as(viewer)
    page.goto(f"{live_server.url}{reverse('topology')}?vhost={busy_vhost}")
    page.wait_for_selector("#graph[data-ready=true]")

    # Unbound queues in one group, folded because there are many; the button unfolds.
    group = page.evaluate("window.warrenGraph.nodes('[?unbound]').length")
    assert group == 12
    header = "window.warrenGraph.getElementById('group:unbound').data('label')"
    assert page.evaluate(header) == "\u25b8 12 unbound queues (show)"
    button = page.locator("#graph-unbound")
    assert button.get_attribute("aria-expanded") == "false"
    assert page.evaluate("window.warrenGraph.nodes('[kind = \"queue\"]:visible').length") == 2
    button.click()
    assert button.get_attribute("aria-expanded") == "true"
    assert page.evaluate("window.warrenGraph.nodes('[kind = \"queue\"]:visible').length") == 14

    # No label on another node, no two labels over each other.
    nodes = page.evaluate(NODE_BOXES)
    clashes = []
    for a in nodes:
        for b in nodes:
            if a["id"] != b["id"] and _box_clash(a["label"], b["body"]):
                clashes.append(("label on node", a["id"], b["id"]))
            if a["id"] < b["id"] and _box_clash(a["label"], b["label"]):
                clashes.append(("labels", a["id"], b["id"]))
    assert clashes == []
    # the label sits under its own node, not on it
    for node in nodes:
        if node["id"] != "group:unbound":  # the group's header carries its words
            assert node["label"]["y1"] >= node["body"]["y2"] - 1, node["id"]

    # Default-exchange routes on demand: one to every queue.
    page.check("#graph-default-routes")
    assert page.evaluate("window.warrenGraph.edges('[kind = \"default\"]').length") == 14
    page.uncheck("#graph-default-routes")
    assert page.evaluate("window.warrenGraph.edges('[kind = \"default\"]').length") == 0

    # Find highlights the matches and centres the first.
    page.fill("#graph-find", "worker-07")
    page.wait_for_timeout(400)  # the centring animation
    assert page.evaluate("window.warrenGraph.nodes('.match').map((n) => n.data('name'))") == [
        "rpc.worker-07.requests"
    ]
    centre = page.evaluate(
        """() => {
             const cy = window.warrenGraph, p = cy.nodes('.match')[0].renderedPosition();
             return { dx: Math.abs(p.x - cy.width() / 2), dy: Math.abs(p.y - cy.height() / 2) };
           }"""
    )
    assert centre["dx"] < 30 and centre["dy"] < 30  # its box, label included, is centred
    assert "1 found" in page.locator("#graph-find-status").inner_text()

    # The graph takes the theme's colours when the theme changes.
    queue_colour = "window.warrenGraph.nodes('[kind = \"queue\"]')[0].style('background-color')"
    light = page.evaluate(queue_colour)
    page.locator("[data-theme-toggle]").click()
    dark = page.evaluate(queue_colour)
    assert light == "rgb(37,99,235)" and dark == "rgb(110,168,255)"
    screenshot(page, "topology-dark")
    # The focus field's placeholder is shown whole.
    fits = page.evaluate(
        """() => {
             const input = document.querySelector("input[name=name]");
             const style = getComputedStyle(input);
             const context = document.createElement("canvas").getContext("2d");
             context.font = style.font;
             const room = input.clientWidth - parseFloat(style.paddingLeft)
               - parseFloat(style.paddingRight);
             return context.measureText(input.placeholder).width <= room;
           }"""
    )
    assert fits


def test_it_draws_latency_charts_again_in_the_new_theme(page_as, viewer, live_server):
    from tests.tracer.frames import rpc_call
    from tracer.store import storage
    from tracer.times import now_us

    vhost = f"warren-latency-{uuid.uuid4().hex[:6]}"
    _, events = rpc_call(at=0, vhost=vhost, wait=1_000, work=5_000, back=500)
    shift = now_us() - 20_000_000 - events[0].captured_us
    for event in events:
        event.captured_us += shift
    storage.store_batch(events, timeout_s=30)

    page = page_as(viewer)
    page.emulate_media(color_scheme="light")
    page.goto(f"{live_server.url}{reverse('latency')}?vhost={vhost}")
    page.wait_for_selector("#chart-series canvas")
    p50 = "window.warrenLatencyCharts['chart-series'].series[1].stroke()"
    assert page.evaluate(p50) == "#1f8a4c"
    page.locator("[data-theme-toggle]").click()
    page.wait_for_function(f"{p50} === '#4cc38a'")
    axis = "window.warrenLatencyCharts['chart-series'].axes[1].stroke()"
    assert page.evaluate(axis) == "#c3c9d4"
    screenshot(page, "latency-dark")


def test_it_keeps_the_sequence_view_readable_on_a_phone(page_as, viewer, live_server):
    from tests.tracer.frames import rpc_call
    from tracer.models import Message
    from tracer.store import storage
    from tracer.times import now_us

    vhost = f"warren-sequence-{uuid.uuid4().hex[:6]}"
    _, events = rpc_call(at=0, vhost=vhost, wait=0, work=3_000, back=0)
    shift = now_us() - 10_000_000 - events[0].captured_us
    for event in events:
        event.captured_us += shift
    storage.store_batch(events, timeout_s=30)
    message = Message.objects.filter(vhost=vhost).order_by("id").first()

    page = page_as(viewer)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}{reverse('conversation')}?message={message.id}")
    page.wait_for_selector("svg.sequence")
    heights = page.evaluate(
        """() => [...document.querySelectorAll(
               "svg.sequence .lane-name, svg.sequence .arrow-label")]
             .map((text) => text.getBoundingClientRect().height)"""
    )
    assert heights and min(heights) >= 10  # text drawn at its size, not shrunk to fit
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    screenshot(page, "sequence-phone")


def test_it_opens_a_json_body_as_a_tree_that_folds(page_as, viewer, live_server):
    from tests.tracer.frames import frame
    from tracer.models import Message
    from tracer.store import storage
    from tracer.times import now_us

    vhost = f"warren-json-{uuid.uuid4().hex[:6]}"
    body = b'{"order": {"id": 7, "lines": [{"sku": "<b>A-1</b>", "qty": 2}]}, "note": null}'
    event = frame("publish", 0, vhost=vhost, routing_key="orders", body=body)
    event.captured_us = now_us() - 5_000_000
    storage.store_batch([event], timeout_s=30)
    message = Message.objects.get(vhost=vhost)

    page = page_as(viewer)
    page.goto(f"{live_server.url}{reverse('message', args=[message.id])}")
    assert page.locator("button[data-tab=json]").get_attribute("aria-selected") == "true"
    tree = page.locator(".json-view")
    assert tree.is_visible()
    sku = tree.locator(".json-str", has_text='"<b>A-1</b>"')  # text, never markup
    assert not sku.is_visible()  # three levels down: folded at first
    assert page.locator(".json-view b").count() == 0
    page.click("text=Expand all")
    assert sku.is_visible()
    assert tree.locator(".json-null").inner_text() == "null"
    assert tree.get_by_text('"note": null', exact=True).is_visible()  # the key, then null
    screenshot(page, "message-json-tree")
    page.click("text=Collapse all")
    assert tree.locator("details[open]").count() == 1  # the top level only
    assert not sku.is_visible()

    # Headers stands apart from the Properties table above it.
    gap = page.evaluate(
        """() => {
             const heading = [...document.querySelectorAll("h2")]
               .find((h) => h.textContent === "Headers");
             const table = heading.previousElementSibling.getBoundingClientRect();
             return heading.getBoundingClientRect().top - table.bottom;
           }"""
    )
    assert gap >= 16
