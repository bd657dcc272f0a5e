"""The Overview page: the broker at a glance, refreshed by htmx."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from console import access
from console.brokers import current_broker
from console.overview import broker_summary
from console.views.common import wants_partial
from rabbit.management_http import BrokerError


@access.page(access.VIEWER)
@require_GET
def overview(request):
    broker = current_broker(request)
    context = {"broker": broker}
    try:
        client = broker.client()
        context["summary"] = broker_summary(client.overview(), client.nodes())
    except BrokerError as error:
        context["broker_error"] = error
    template = "overview.html#stats" if wants_partial(request) else "overview.html"
    return render(request, template, context)
