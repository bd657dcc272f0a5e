"""Queues: the list (paged, sorted and filtered by the broker), one queue, and peeking."""

from functools import partial

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from console import access, charts, exchanges, peek, plumbing, queues, streams
from console.brokers import current_broker
from console.forms import BindForm, DeleteQueueForm, MoveForm, PublishForm
from console.listing import fetch_page
from console.models import AuditEntry
from console.url_segments import href_segment
from console.views.charts import QUEUE_CHARTS, page_charts
from console.views.common import render_list, wants_partial
from rabbit.management_http import BrokerError, BrokerNotFound

SORTABLE = list(queues.QUEUE_SORTS)


def queue_href(vhost, name, base=None):
    return f"{base or reverse('queues')}{href_segment(vhost)}/{href_segment(name)}/"


@access.page(access.VIEWER)
@require_GET
def queue_list(request):
    def fetch(client, vhost, query):
        return fetch_page(partial(client.queues_page, vhost, columns=queues.QUEUE_COLUMNS), query)

    def make_rows(items):
        base = reverse("queues")
        rows = [queues.queue_row(item) for item in items]
        for row in rows:
            row.href = queue_href(row.vhost, row.name, base)
        return rows

    return render_list(
        request,
        current_broker(request),
        queues.list_query(request.GET),
        fetch,
        make_rows,
        "queues.html",
        "queues.html#queue-list",
        SORTABLE,
        is_plumbing=lambda row: plumbing.is_warren_queue(row.name),
    )


def _dead_letter_route(client, vhost, target):
    """Where a queue's dead letters end up: {"exchange_missing", "queues", "note"}."""
    if target is None:
        return None
    route = {"exchange_missing": False, "bindings": [], "note": ""}
    if target.exchange == "":
        if target.routing_key:
            route["bindings"] = [
                exchanges.Binding(vhost, "", str(target.routing_key), "queue", "", {}, "")
            ]
        else:
            route["note"] = "the queue named by each message's own routing key"
        return route
    try:
        exchange = client.exchange(vhost, target.exchange)
        out = exchanges.bindings(client.exchange_bindings_out(vhost, target.exchange))
    except BrokerNotFound:
        route["exchange_missing"] = True
        return route
    if target.routing_key is None:
        route["bindings"] = out
        route["note"] = "messages keep their own routing keys, so any of these may match"
        return route
    matched = exchanges.routes(exchange.get("type", ""), out, str(target.routing_key))
    if matched is None:
        route["bindings"] = out
        route["note"] = "a headers exchange: the message headers decide"
    else:
        route["bindings"] = matched
    return route


def _queue_context(request, broker, vhost, name):
    context = {"broker": broker, "vhost": vhost, "name": name, "can_operate": False}
    try:
        client = broker.client()
        raw = client.queue(vhost, name)
        detail = queues.queue_detail(raw)
        context.update(
            detail=detail,
            row=detail.row,
            bindings=exchanges.bindings(client.queue_bindings(vhost, name)),
            dead_letter_route=_dead_letter_route(client, vhost, detail.dead_letter),
        )
    except BrokerNotFound:
        context["gone"] = True
    except BrokerError as error:
        context["broker_error"] = error
    context["can_operate"] = access.can_operate(request.user)
    if plumbing.is_warren_queue(name):
        context["plumbing_words"] = {
            verb: plumbing.what_breaks(verb, "queue", name, vhost) for verb in ("purge", "delete")
        }
    return context


def _action_forms(name):
    return {
        "publish_form": PublishForm(initial={"routing_key": name}),
        "bind_form": BindForm(initial={"destination_type": "q", "destination": name}),
        "delete_form": DeleteQueueForm(),
        "move_form": MoveForm(source=name),
        "peek_sizes": (1, 5, 10, 20, 50),
        "stream_starts": streams.START_CHOICES,
        "stream_page_sizes": streams.PAGE_SIZES,
    }


def _charts(request, vhost, name):
    url = reverse("queue_charts", args=[vhost, name])
    return page_charts(request, url, charts.PER_OBJECT, QUEUE_CHARTS)


@access.page(access.VIEWER)
@require_GET
def queue_detail(request, vhost, name):
    broker = current_broker(request)
    context = _queue_context(request, broker, vhost, name)
    if wants_partial(request):
        return render(request, "queue.html#queue-figures", context)
    context.update(_action_forms(name))
    context.update(_charts(request, vhost, name))
    context["stream_url"] = reverse("queue_stream", args=[vhost, name])
    return render(request, "queue.html", context)


def full_queue_context(request, broker, vhost, name):
    """Everything the whole queue page needs (the stream browser renders it too)."""
    context = _queue_context(request, broker, vhost, name)
    context.update(_action_forms(name))
    context.update(_charts(request, vhost, name))
    return context


@access.page(access.VIEWER)
@require_POST
def queue_peek(request, vhost, name):
    """Get messages with ack_requeue_true: they stay, but come back marked redelivered.

    A viewer may look, but it changes the queue (redelivered flag, order for
    some queue types), so every peek is audited like an action.
    """
    broker = current_broker(request)
    try:
        count = min(max(int(request.POST.get("count", peek.DEFAULT_PEEK)), 1), peek.MAX_PEEK)
    except ValueError:
        count = peek.DEFAULT_PEEK
    context = {"broker": broker, "vhost": vhost, "name": name, "peek_count": count}
    try:
        raw = broker.client().peek(vhost, name, count=count, truncate=peek.body_limit())
        context["peeked"] = peek.peeked_messages(raw)
        result, detail = AuditEntry.OK, f"{len(context['peeked'])} of {count} asked"
    except BrokerNotFound:
        context["peek_error"] = f"Queue '{name}' no longer exists in vhost '{vhost}'."
        result, detail = AuditEntry.FAILED, "no such queue"
    except BrokerError as error:
        context["peek_error"] = error.message
        result, detail = AuditEntry.FAILED, error.message
    AuditEntry.record(
        request,
        "peek",
        result=result,
        broker=broker.slug,
        vhost=vhost,
        target=f"queue {name}",
        detail=detail,
    )
    if wants_partial(request):
        return render(request, "queue.html#peek-results", context)
    full = _queue_context(request, broker, vhost, name)
    full.update(_action_forms(name))
    full.update(_charts(request, vhost, name))
    full.update(context)
    return render(request, "queue.html", full)
