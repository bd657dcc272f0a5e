"""Exchanges: the list (paged by the broker) and one exchange with its bindings."""

from functools import partial

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from console import access, charts, exchanges, plumbing
from console.brokers import current_broker
from console.forms import BindForm, DeleteExchangeForm, PublishForm
from console.listing import fetch_page
from console.url_segments import DEFAULT_EXCHANGE_SEGMENT, href_segment
from console.views.charts import EXCHANGE_CHARTS, page_charts
from console.views.common import render_list, wants_partial
from rabbit.management_http import BrokerError, BrokerNotFound

SORTABLE = list(exchanges.EXCHANGE_SORTS)


def exchange_href(vhost, name, base=None):
    segment = href_segment(name or DEFAULT_EXCHANGE_SEGMENT)
    return f"{base or reverse('exchanges')}{href_segment(vhost)}/{segment}/"


def _policy_definitions(client, vhost):
    """Policies of one vhost (or all) so an alternate exchange set by policy shows."""
    try:
        return exchanges.policy_definitions(
            client.policies(vhost) if vhost else client.get("policies")
        )
    except BrokerError:
        return {}


@access.page(access.VIEWER)
@require_GET
def exchange_list(request):
    broker = current_broker(request)
    state = {}

    def fetch(client, vhost, query):
        state.update(client=client, vhost=vhost)
        return fetch_page(
            partial(client.exchanges_page, vhost, columns=exchanges.EXCHANGE_COLUMNS), query
        )

    def make_rows(items):
        definitions = {}
        if any(item.get("policy") for item in items):
            definitions = _policy_definitions(state["client"], state["vhost"])
        base = reverse("exchanges")
        rows = [exchanges.exchange_row(item, definitions) for item in items]
        for row in rows:
            row.href = exchange_href(row.vhost, row.name, base)
        return rows

    return render_list(
        request,
        broker,
        exchanges.list_query(request.GET),
        fetch,
        make_rows,
        "exchanges.html",
        "exchanges.html#exchange-list",
        SORTABLE,
        is_plumbing=lambda row: plumbing.is_warren_exchange(row.name),
    )


def _exchange_context(request, broker, vhost, name):
    context = {
        "broker": broker,
        "vhost": vhost,
        "name": name,
        "label": exchanges.display_name(name),
    }
    try:
        client = broker.client()
        raw = client.exchange(vhost, name)
        definitions = _policy_definitions(client, vhost) if raw.get("policy") else {}
        row = exchanges.exchange_row(raw, definitions)
        if name == "":
            out, into = [], []  # the default exchange's bindings are implicit: one per queue
        else:
            out = exchanges.bindings(client.exchange_bindings_out(vhost, name))
            into = exchanges.bindings(client.exchange_bindings_in(vhost, name))
        alternate_missing = False
        if row.alternate_exchange:
            try:
                client.exchange(vhost, row.alternate_exchange)
            except BrokerNotFound:
                alternate_missing = True
        context.update(
            row=row,
            bindings_out=out,
            bindings_in=into,
            alternate_missing=alternate_missing,
        )
    except BrokerNotFound:
        context["gone"] = True
    except BrokerError as error:
        context["broker_error"] = error
    context["can_operate"] = access.can_operate(request.user)
    return context


@access.page(access.VIEWER)
@require_GET
def exchange_detail(request, vhost, name):
    broker = current_broker(request)
    context = _exchange_context(request, broker, vhost, name)
    if wants_partial(request):
        return render(request, "exchange.html#exchange-figures", context)
    context.update(
        publish_form=PublishForm(),
        bind_form=BindForm(initial={"source": name, "destination_type": "q"}),
        delete_form=DeleteExchangeForm(),
    )
    if plumbing.is_warren_exchange(name):
        context["plumbing_words"] = {
            "delete": plumbing.what_breaks("delete", "exchange", name, vhost)
        }
    url = reverse("exchange_charts", args=[vhost, name])
    context.update(page_charts(request, url, charts.PER_OBJECT, EXCHANGE_CHARTS))
    return render(request, "exchange.html", context)
