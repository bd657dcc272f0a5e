"""The Overview page: the broker at a glance (or one vhost's share of it), refreshed by htmx."""

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from console import access, charts
from console.brokers import current_broker
from console.overview import broker_summary, vhost_counts, vhost_summary
from console.vhosts import forget_selection, selected_vhost
from console.views.charts import OVERVIEW_CHARTS, VHOST_CHARTS, page_charts
from console.views.common import wants_partial
from rabbit.management_http import BrokerError, BrokerNotFound


@access.page(access.VIEWER)
@require_GET
def overview(request):
    broker = current_broker(request)
    vhost = selected_vhost(request, broker)
    context = {"broker": broker, "vhost": vhost}
    try:
        client = broker.client()
        overview_json, nodes = client.overview(), client.nodes()
        summary = broker_summary(overview_json, nodes)
        if vhost:
            try:
                summary = vhost_summary(summary, client.vhost(vhost), vhost_counts(client, vhost))
            except BrokerNotFound:
                forget_selection(request, broker)
                context["notice"] = (
                    f"Vhost “{vhost}” does not exist (any more): showing every vhost."
                )
                context["vhost"] = vhost = None
        context["summary"] = summary
    except BrokerError as error:
        context["broker_error"] = error
    if wants_partial(request):
        return render(request, "overview.html#stats", context)
    context.update(
        page_charts(
            request,
            reverse("overview_charts"),
            charts.BROKER_WIDE,
            VHOST_CHARTS if vhost else OVERVIEW_CHARTS,
            f"Vhost {vhost} over time" if vhost else "Over time",
        )
    )
    return render(request, "overview.html", context)
