"""Template helpers of the broker console: the vhost/broker selector and figures."""

import json

from django import template
from django.urls import reverse

from console import access
from console.brokers import all_brokers, current_broker
from console.vhosts import selected_vhost, vhost_names

register = template.Library()

# Detail pages send the selector back to their list page: a queue of one
# vhost means nothing once another vhost is chosen.
LIST_PAGE_OF = {
    "queue": "queues",
    "exchange": "exchanges",
    "exchange_publish": "exchanges",
    "connection": "connections",
    "topology": "topology",
}


@register.inclusion_tag("partials/selectors.html", takes_context=True)
def vhost_selector(context):
    request = context.get("request")
    if request is None or not access.can_view(request.user):
        return {"show": False}
    broker = current_broker(request)
    chosen = selected_vhost(request, broker)
    # A page that already found the broker sick does not ask it again.
    names = [] if context.get("broker_error") else vhost_names(broker)
    if chosen and chosen not in names:
        names = [chosen] + names  # keep the choice visible while the broker is away
    match = getattr(request, "resolver_match", None)
    url_name = match.url_name if match else ""
    action = reverse(LIST_PAGE_OF[url_name]) if url_name in LIST_PAGE_OF else request.path
    brokers = all_brokers()
    return {
        "show": True,
        "action": action,
        "vhosts": names,
        "chosen": chosen or "",
        "brokers": brokers if len(brokers) > 1 else [],
        "broker_slug": broker.slug,
    }


@register.filter
def rate(value):
    """Messages per second: '–' for none, one decimal below 100, whole above."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    if number == 0:
        return "0"
    if number < 0.1:
        return "<0.1"
    if number < 100:
        return f"{number:.1f}"
    return f"{number:,.0f}"


@register.filter
def count(value):
    """A message count with thousands separators; '–' while the broker has none yet."""
    if value is None or value == "":
        return "–"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def as_json(value):
    """A value (arguments, client properties) as compact, readable JSON text."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@register.filter
def epoch_ms(value):
    """A millisecond Unix time (connected_at) as an ISO timestamp, UTC."""
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return "–"


@register.filter
def epoch_s(value):
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(int(value), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return "–"


@register.filter
def span(seconds):
    """A chart's time span in words: '10 min', '45 s', '2 h'."""
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        return "–"
    if seconds >= 5400:
        return f"{round(seconds / 3600)} h"
    if seconds >= 90:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds)} s"


@register.simple_tag
def queue_rows(rows, vhost):
    """The Queues page's rows (console/queue_rows.py); the vhost column when no vhost is chosen."""
    from console.queue_rows import rows_html  # it uses this module's filters

    return rows_html(rows, show_vhost=not vhost)
