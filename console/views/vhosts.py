"""Vhosts: every vhost with its totals, rates and whether tracing is on."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from console import access, vhosts
from console.brokers import current_broker
from console.views.common import wants_partial
from rabbit import cluster
from rabbit.brokers import DEFAULT_SLUG
from rabbit.management_http import BrokerError


@access.page(access.VIEWER)
@require_GET
def vhost_list(request):
    broker = current_broker(request)
    context = {
        "broker": broker,
        "chosen": vhosts.selected_vhost(request, broker),
        "summaries": [],
        "max_counted": vhosts.MAX_COUNTED_VHOSTS,
        # the tap traces the default broker only: the switches are there alone
        "tracing_switchable": broker.slug == DEFAULT_SLUG,
    }
    try:
        client = broker.client()
        summaries, counted = vhosts.vhost_summaries(client)
        node_tracing, tracing_problem = cluster.tracing_by_node(client)
        for summary in summaries:
            summary.node_tracing = node_tracing.get(summary.name, {})
        context.update(
            summaries=summaries,
            counted=counted,
            totals=vhosts.totals(summaries),
            tracing_problem=tracing_problem,
        )
    except BrokerError as error:
        context["broker_error"] = error
    template = "vhosts.html#vhost-table" if wants_partial(request) else "vhosts.html"
    return render(request, template, context)
