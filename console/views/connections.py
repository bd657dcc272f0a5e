"""Connections and channels: who is connected, with what, and how busy."""

from functools import partial

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from console import access, connections, queues
from console.brokers import current_broker
from console.forms import CloseConnectionForm
from console.listing import fetch_page, pager, paginate_locally
from console.management_api import BrokerError, BrokerNotFound
from console.url_segments import href_segment
from console.vhosts import selected_vhost
from console.views.common import wants_partial
from console.views.queues import queue_href


def connection_href(name, base=None):
    return f"{base or reverse('connections')}{href_segment(name)}/"


def _list_page(client_call, vhost_call, vhost, query):
    """All vhosts: the broker pages; one vhost: its (unpaged) list is paged here."""
    if vhost:
        return paginate_locally(vhost_call(vhost).items, query), query
    return fetch_page(client_call, query)


@access.page(access.VIEWER)
@require_GET
def connection_list(request):
    broker = current_broker(request)
    vhost = selected_vhost(request, broker)
    query = connections.connection_query(request.GET)
    extra = {"vhost": vhost or ""}
    context = {
        "broker": broker,
        "vhost": vhost,
        "query": query,
        "rows": [],
        "page_sizes": (20, 50, 100, 200, 500),
        "filter_error": query.regex_error,
    }
    if not query.regex_error:
        try:
            client = broker.client()
            page, query = _list_page(
                partial(client.connections_page, None, columns=connections.CONNECTION_COLUMNS),
                client.connections_page,
                vhost,
                query,
            )
            base = reverse("connections")
            rows = [connections.connection_row(item) for item in page.items]
            for row in rows:
                row.href = connection_href(row.name, base)
            context.update(rows=rows, pager=pager(query, page, extra), query=query)
        except BrokerError as error:
            context["broker_error"] = error
    context["headers"] = query.sort_headers(list(connections.CONNECTION_SORTS), extra)
    context["refresh_url"] = request.path + query.query_string(extra)
    template = "connections.html#connection-list" if wants_partial(request) else "connections.html"
    return render(request, template, context)


@access.page(access.VIEWER)
@require_GET
def connection_detail(request, name):
    broker = current_broker(request)
    context = {"broker": broker, "name": name, "can_operate": access.can_operate(request.user)}
    try:
        client = broker.client()
        row = connections.connection_row(client.connection(name))
        channels = [connections.channel_row(c) for c in client.connection_channels(name) or []]
        channel_names = {c.name for c in channels}
        consumers = [
            queues.consumer(raw)
            for raw in client.consumers(row.vhost) or []
            if (raw.get("channel_details") or {}).get("name") in channel_names
        ]
        for consumer in consumers:
            consumer.queue_href = queue_href(row.vhost, consumer.queue)
        context.update(row=row, channels=channels, consumers=consumers)
    except BrokerNotFound:
        context["gone"] = True
    except BrokerError as error:
        context["broker_error"] = error
    if wants_partial(request):
        return render(request, "connection.html#connection-figures", context)
    context["close_form"] = CloseConnectionForm()
    return render(request, "connection.html", context)


@access.page(access.VIEWER)
@require_GET
def channel_list(request):
    broker = current_broker(request)
    vhost = selected_vhost(request, broker)
    query = connections.channel_query(request.GET)
    extra = {"vhost": vhost or ""}
    context = {
        "broker": broker,
        "vhost": vhost,
        "query": query,
        "rows": [],
        "page_sizes": (20, 50, 100, 200, 500),
        "filter_error": query.regex_error,
    }
    if not query.regex_error:
        try:
            client = broker.client()
            page, query = _list_page(
                partial(client.channels_page, None, columns=connections.CHANNEL_COLUMNS),
                client.channels_page,
                vhost,
                query,
            )
            base = reverse("connections")
            rows = [connections.channel_row(item) for item in page.items]
            for row in rows:
                row.connection_href = connection_href(row.connection, base)
            context.update(rows=rows, pager=pager(query, page, extra), query=query)
        except BrokerError as error:
            context["broker_error"] = error
    context["headers"] = query.sort_headers(list(connections.CHANNEL_SORTS), extra)
    context["refresh_url"] = request.path + query.query_string(extra)
    template = "channels.html#channel-list" if wants_partial(request) else "channels.html"
    return render(request, template, context)
