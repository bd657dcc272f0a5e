"""Nodes: the cluster's nodes, and one node's resources, memory, listeners and alarms."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console import access
from console.brokers import current_broker
from console.nodes import alarms_of, node_detail
from console.overview import node_summary
from console.views.common import wants_partial
from rabbit import nodes
from rabbit.management_http import BrokerError, BrokerNotFound


@access.page(access.VIEWER)
@require_GET
def node_list(request: HttpRequest) -> HttpResponse:
    broker = current_broker(request)
    context: dict[str, object] = {"broker": broker, "nodes": []}
    try:
        summaries = [node_summary(n) for n in broker.client().nodes()]
        context["nodes"] = [(s, alarms_of(s)) for s in summaries]
    except BrokerError as error:
        context["broker_error"] = error
    template = "nodes.html#node-table" if wants_partial(request) else "nodes.html"
    return render(request, template, context)


@access.page(access.VIEWER)
@require_GET
def node_page(request: HttpRequest, name: str) -> HttpResponse:
    broker = current_broker(request)
    context: dict[str, object] = {"broker": broker, "name": name}
    try:
        client = broker.client()
        # RabbitMQ 3.10 answers 500, not 404, for a node it does not know: ask the list.
        if name not in {n.get("name") for n in client.nodes_columns(["name"])}:
            raise BrokerNotFound(f"no node {name!r} in the cluster", status=404)
        raw = nodes.node(client, name)
        # A node that is down answers its figures without a memory breakdown.
        memory = nodes.memory(client, name) if raw.get("running") else {}
        context["node"] = node_detail(raw, memory, nodes.listeners(client))
    except BrokerNotFound:
        context["gone"] = True
    except BrokerError as error:
        context["broker_error"] = error
    template = "node.html#node-figures" if wants_partial(request) else "node.html"
    return render(request, template, context)
