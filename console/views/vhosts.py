"""Vhosts: every vhost with its totals, rates and whether tracing is on."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from console import access, vhosts
from console.brokers import current_broker
from console.views.common import wants_partial
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
    }
    try:
        summaries, counted = vhosts.vhost_summaries(broker.client())
        context.update(summaries=summaries, counted=counted, totals=vhosts.totals(summaries))
    except BrokerError as error:
        context["broker_error"] = error
    template = "vhosts.html#vhost-table" if wants_partial(request) else "vhosts.html"
    return render(request, template, context)
