"""Topology: the page with the graph, and the JSON the page's script draws.

The graph data comes from a separate request (scripts cannot be inline under
the CSP, and the page should appear before a big vhost is walked).
"""

from urllib.parse import urlencode

from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from console import access, topology
from console.brokers import current_broker
from console.vhosts import selected_vhost
from console.views.exchanges import exchange_href
from console.views.queues import queue_href
from rabbit.management_http import BrokerError, BrokerNotFound

SUGGESTIONS = 15


def _focus(params):
    kind = params.get("kind", "")
    name = params.get("name")
    # An empty name means the whole vhost (the default exchange is never drawn).
    if kind not in ("queue", "exchange") or not name:
        return None, None
    return kind, name


def _depth(params):
    try:
        return min(max(int(params.get("depth", 1)), 1), 3)
    except ValueError:
        return 1


@access.page(access.VIEWER)
@require_GET
def topology_page(request):
    broker = current_broker(request)
    vhost = selected_vhost(request, broker)
    broker_error = None
    notice = ""
    try:
        client = broker.client()
        names = sorted(v.get("name", "") for v in client.vhosts() or [])
        if not vhost:
            # A graph is of one vhost: "all vhosts" shows the first with queues of the
            # user's, not a `/` that holds only Warren's plumbing.
            vhost = topology.first_vhost_with_queues(client, names)
            notice = f"The topology is drawn per vhost: showing '{vhost}'. Choose another above."
    except BrokerError as error:
        broker_error, names = error, []
        vhost = vhost or "/"
    kind, name = _focus(request.GET)
    depth = _depth(request.GET)
    show_plumbing = request.GET.get("plumbing") == "1"
    params = {"vhost": vhost, "depth": depth}
    if kind:
        params.update(kind=kind, name=name)
    if show_plumbing:
        params["plumbing"] = "1"
    context = {
        "broker": broker,
        "vhost": vhost,
        "vhosts": names,
        "notice": notice,
        "kind": kind or "queue",
        "focus_name": name or "",
        "depth": depth,
        "show_plumbing": show_plumbing,
        "data_url": reverse("topology_data") + "?" + urlencode(params),
        "page_url": reverse("topology"),
        "broker_error": broker_error,
    }
    return render(request, "topology.html", context)


def _suggestions(client, vhost):
    """The queues with most messages, to start from when a vhost is too big to draw."""
    page = client.queues_page(
        vhost,
        page=1,
        page_size=SUGGESTIONS,
        sort="messages",
        sort_reverse=True,
        columns=["name", "messages"],
    )
    return [{"name": q["name"], "messages": q.get("messages")} for q in page.items]


@access.page(access.VIEWER)
@require_GET
def topology_data(request):
    broker = current_broker(request)
    vhost = request.GET.get("vhost") or "/"
    kind, name = _focus(request.GET)
    try:
        client = broker.client()
        show_plumbing = request.GET.get("plumbing") == "1"
        data = topology.build(client, vhost, kind, name, _depth(request.GET), show_plumbing)
        if data["mode"] == "too-big":
            data["suggestions"] = _suggestions(client, vhost)
    except BrokerNotFound as error:
        return JsonResponse({"error": error.message}, status=404)
    except BrokerError as error:
        return JsonResponse({"error": f"{error.banner}. {error.message}"}, status=502)
    queues_base, exchanges_base = reverse("queues"), reverse("exchanges")
    focus_base = reverse("topology") + "?"
    for element in data["elements"]:
        node = element["data"]
        if element["group"] != "nodes":
            continue
        if node["kind"] == "queue":
            node["url"] = queue_href(vhost, node["name"], queues_base)
        elif not node.get("missing"):
            node["url"] = exchange_href(vhost, node["name"], exchanges_base)
        node["focus_url"] = focus_base + urlencode(
            {"vhost": vhost, "kind": node["kind"], "name": node["name"]}
        )
    for suggestion in data.get("suggestions", []):
        suggestion["focus_url"] = focus_base + urlencode(
            {"vhost": vhost, "kind": "queue", "name": suggestion["name"]}
        )
    return JsonResponse(data)
