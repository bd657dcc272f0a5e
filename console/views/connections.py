"""Connections and channels: who is connected, with what, and how busy."""

from concurrent.futures import ThreadPoolExecutor
from functools import partial

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from console import access, connections, queues
from console.brokers import current_broker
from console.forms import CloseConnectionForm
from console.listing import fetch_page, paginate_locally
from console.url_segments import href_segment
from console.views.common import render_list, wants_partial
from console.views.queues import queue_href
from rabbit.management_http import BrokerError, BrokerNotFound


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
    def fetch(client, vhost, query):
        return _list_page(
            partial(client.connections_page, None, columns=connections.CONNECTION_COLUMNS),
            client.connections_page,
            vhost,
            query,
        )

    def make_rows(items):
        base = reverse("connections")
        rows = [connections.connection_row(item) for item in items]
        for row in rows:
            row.href = connection_href(row.name, base)
        return rows

    return render_list(
        request,
        current_broker(request),
        connections.connection_query(request.GET),
        fetch,
        make_rows,
        "connections.html",
        "connections.html#connection-list",
        list(connections.CONNECTION_SORTS),
    )


# A connection's consumers come from its channels' own details (one small call
# each) rather than from every consumer of the vhost, which can be thousands.
CHANNEL_DETAIL_LIMIT = 50


def _channel_consumers(client, channel_name):
    try:
        return (client.channel(channel_name) or {}).get("consumer_details") or []
    except BrokerNotFound:
        return []  # the channel closed meanwhile


def _consumers(client, channels):
    busy = [c.name for c in channels][:CHANNEL_DETAIL_LIMIT]  # stats may lag: ask each
    if not busy:
        return []
    with ThreadPoolExecutor(max_workers=min(6, len(busy))) as pool:
        details = pool.map(lambda channel: _channel_consumers(client, channel), busy)
    return [queues.consumer(raw) for batch in details for raw in batch]


@access.page(access.VIEWER)
@require_GET
def connection_detail(request, name):
    broker = current_broker(request)
    context = {"broker": broker, "name": name, "can_operate": access.can_operate(request.user)}
    try:
        client = broker.client()
        row = connections.connection_row(client.connection(name))
        channels = [connections.channel_row(c) for c in client.connection_channels(name) or []]
        consumers = _consumers(client, channels)
        context["consumers_capped"] = len(channels) > CHANNEL_DETAIL_LIMIT
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
    def fetch(client, vhost, query):
        return _list_page(
            partial(client.channels_page, None, columns=connections.CHANNEL_COLUMNS),
            client.channels_page,
            vhost,
            query,
        )

    def make_rows(items):
        base = reverse("connections")
        rows = [connections.channel_row(item) for item in items]
        for row in rows:
            row.connection_href = connection_href(row.connection, base)
        return rows

    return render_list(
        request,
        current_broker(request),
        connections.channel_query(request.GET),
        fetch,
        make_rows,
        "channels.html",
        "channels.html#channel-list",
        list(connections.CHANNEL_SORTS),
    )
