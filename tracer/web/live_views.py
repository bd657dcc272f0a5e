"""Live pages: Live flows, the live message tail, Latency and the sequence view.

The live pages render the newest stored rows first (the same partials the
WebSocket pushes), then static/js/live.js opens /ws/flows/ or /ws/messages/
with the page's filter. Latency refreshes its table through htmx and its
charts from `latency_data` every few seconds.
"""

from urllib.parse import urlencode

from django.http import JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from console import access
from console.vhosts import selected_vhost
from console.views.common import wants_partial
from rabbit.brokers import default_broker
from tracer.live import rows
from tracer.live.events import flow_event
from tracer.live.subscriptions import DEFAULT_SLOW_MS, FLOWS, Filter, FilterError
from tracer.times import from_us, iso
from tracer.web import conversation, latency

FIRST_ROWS = 50
ROW_CAP = 200  # rows the page keeps; older ones leave the DOM
# The WebSocket routes of console/routing.py (no reverse() across protocols).
WS_PATHS = {FLOWS: "/ws/flows/", "messages": "/ws/messages/"}

FLOW_STATUS_LABELS = {
    "": "any status",
    "pending": "pending",
    "complete": "complete",
    "timeout": "only timeouts",
    "orphan": "orphans",
    "slow": "only slow",
    "errors": "only errors (timeouts, orphans)",
}
MESSAGE_STATUS_LABELS = {
    "": "publishes and deliveries",
    "publish": "publishes",
    "deliver": "deliveries",
    "redelivered": "redeliveries",
    "unroutable": "unroutable publishes",
}

STATUS_LABELS = {FLOWS: FLOW_STATUS_LABELS, "messages": MESSAGE_STATUS_LABELS}


def _filter(request, stream):
    """The page's filter from the query string; the header's vhost choice by default."""
    params = request.GET.copy()
    if "vhost" not in params:
        params["vhost"] = selected_vhost(request) or ""
    try:
        return Filter.parse(stream, params), None
    except FilterError as error:
        return Filter(stream=stream, vhost=params.get("vhost", "")[:255]), str(error)


def _live_page(request, stream, template, partial):
    flt, error = _filter(request, stream)
    found = rows.recent(flt, request.user, limit=FIRST_ROWS)
    make_row = rows.flow_row if stream == FLOWS else rows.message_row
    context = {
        "filter": flt,
        "filter_error": error,
        "rows": [make_row(event) for event in found],
        "row_cap": ROW_CAP,
        "ws_path": WS_PATHS[stream],
        "status_choices": (
            FLOW_STATUS_LABELS if stream == FLOWS else MESSAGE_STATUS_LABELS
        ).items(),
        "default_slow_ms": DEFAULT_SLOW_MS,
    }
    if wants_partial(request):
        return render(request, f"{template}#{partial}", context)
    return render(request, template, context)


@access.page(access.VIEWER)
@require_GET
def live_flows(request):
    return _live_page(request, FLOWS, "live_flows.html", "flow_rows")


@access.page(access.VIEWER)
@require_GET
def live_messages(request):
    return _live_page(request, "messages", "live_messages.html", "message_rows")


# --- latency ------------------------------------------------------------------------------


def _flows_list_url(**params):
    """The Flows list filtered (the colleague's page), or Live flows with the same filter."""
    params = {name: value for name, value in params.items() if value not in (None, "")}
    try:
        base = reverse("flows")
    except NoReverseMatch:
        base = reverse("live_flows")
    return f"{base}?{urlencode(params)}"


def _latency_context(request):
    window = latency.window(request.GET.get("window", ""))
    vhost = request.GET.get("vhost")
    vhost = (selected_vhost(request) or "") if vhost is None else vhost[:255]
    service = request.GET.get("service", "")[:255]
    table = latency.service_table(window, vhost or None)
    for entry in table:
        entry.slowest_url = _flows_list_url(
            vhost=entry.vhost,
            service=entry.service,
            min_latency_ms=entry.p95_ms if entry.p95_ms is not None else None,
        )
        entry.timeouts_url = _flows_list_url(
            vhost=entry.vhost, service=entry.service, status="timeout"
        )
        entry.chart_url = "?" + _query(window=window.key, vhost=vhost, service=entry.service)
    slowest_p95 = max((entry.p95_ms or 0 for entry in table), default=0)
    calls = sum(entry.calls for entry in table)
    active_s = latency.active_seconds(window, vhost or None) if table else 0
    totals = {
        "calls": calls,
        # over the time any service was active: quiet minutes say nothing of a rate
        "per_s": calls / active_s if active_s else 0,
        "active_s": active_s,
        "timeouts": sum(entry.timeouts for entry in table),
        "late": sum(entry.late for entry in table),
    }
    timeouts = latency.recent_timeouts(window, vhost or None, service or None)
    return {
        "window": window,
        "window_from": from_us(window.since_us),
        "window_to": from_us(window.until_us),
        "windows": latency.window_choices(),
        "vhost": vhost,
        "service": service,
        "services": sorted({entry.service for entry in table} | ({service} if service else set())),
        "table": table,
        "slowest_p95": slowest_p95,
        "slowest": table[0] if table and table[0].p95_ms is not None else None,
        "totals": totals,
        "exact": all(entry.exact for entry in table),
        "timeouts": [
            {**rows.flow_row(_flow_event(flow)), "requested_iso": iso(flow.requested_at)}
            for flow in timeouts
        ],
        "data_url": reverse("latency_data")
        + "?"
        + _query(window=window.key, vhost=vhost, service=service),
        "table_url": reverse("latency") + "?" + _query(window=window.key, vhost=vhost),
    }


def _flow_event(flow):
    return flow_event(flow, default_broker().slug)


def _query(**params):
    return urlencode({name: value for name, value in params.items() if value})


@access.page(access.VIEWER)
@require_GET
def latency_page(request):
    context = _latency_context(request)
    if wants_partial(request):
        return render(request, "latency.html#service_table", context)
    return render(request, "latency.html", context)


@access.api(access.VIEWER)
@require_GET
def latency_data(request):
    window = latency.window(request.GET.get("window", ""))
    vhost = request.GET.get("vhost", "")[:255] or None
    service = request.GET.get("service", "")[:255] or None
    exact = latency.is_exact(window, vhost, service)
    return JsonResponse(
        {
            "window": window.key,
            "since": window.since_us / 1_000_000,
            "until": window.until_us / 1_000_000,
            "service": service,
            "exact": exact,
            "histogram": latency.histogram(window, vhost, service, exact=exact),
            "series": latency.series(window, vhost, service, exact=exact),
        }
    )


# --- the sequence view -----------------------------------------------------------------------


def _int(value):
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < (1 << 63) else None


@access.page(access.VIEWER)
@require_GET
def conversation_page(request):
    params = {
        "flow": _int(request.GET.get("flow")),
        "message": _int(request.GET.get("message")),
        "correlation_id": request.GET.get("correlation_id", "")[:255] or None,
        "trace": request.GET.get("trace", "")[:64] or None,
        "vhost": request.GET.get("vhost", "")[:255] or None,
    }
    context = {
        "asked": params,
        "diagram": None,
        "error": None,
        "marker_kinds": conversation.MARKER_KINDS,
        "gutter_right": conversation.GUTTER - 10,
    }
    if any(value for name, value in params.items() if name != "vhost"):
        try:
            diagram = conversation.build(broker=default_broker(), **params)
        except conversation.ConversationError as error:
            context["error"] = str(error)
        else:
            for arrow in diagram.arrows:
                arrow.url = rows.message_url(arrow.message_id)
            start = diagram.messages[0].captured_at
            context["diagram"] = diagram
            context["events"] = [
                {
                    "message": message,
                    "offset_ms": (message.captured_at - start).total_seconds() * 1000,
                    "connection": diagram.labels.get(message.connection)
                    or conversation.short_address(message.connection),
                }
                for message in diagram.messages
            ]
    status = 404 if context["error"] and "There is no" in context["error"] else 200
    return render(request, "conversation.html", context, status=status)
