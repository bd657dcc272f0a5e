"""Tracer pages: Messages (search, one message, its body) and Flows (list, timeline).

Filters are those of the JSON API (tracer/web/queries.py); a filter that cannot be
used shows its reason above an empty list. Everything shown is masked first.
"""

from urllib.parse import urlencode

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from console import access
from console.views.common import wants_partial
from tracer.masking import mask_properties, masked_names
from tracer.models import Flow, Message
from tracer.store import status
from tracer.web import display, queries, serialize
from tracer.web.json_tree import json_tree

MAX_ID = 2**63 - 1
PAGE_LIMIT = 50


def _next_url(request, cursor):
    if not cursor:
        return None
    params = request.GET.copy()
    params["cursor"] = cursor
    return f"{request.path}?{params.urlencode()}"


def _page_params(request):
    params = request.GET.copy()
    if "limit" not in params:
        params["limit"] = str(PAGE_LIMIT)
    return params


def _export_query(request, allowed):
    """The page's filters as an export's query (no paging: an export takes them all)."""
    params = request.GET.copy()
    for name in list(params):
        if name not in allowed or name in ("limit", "cursor") or not params.get(name):
            del params[name]
    return params.urlencode()


def _tap_line():
    report = status.tap_status()
    return {"tap": report, "gaps": report.get("gaps", [])[:5]}


@access.page(access.VIEWER)
@require_GET
def messages(request):
    context = {
        "form": request.GET,
        "rows": [],
        "next_url": None,
        "export_query": _export_query(request, queries.MESSAGE_PARAMS),
        **_tap_line(),
    }
    try:
        filters = queries.message_filters(_page_params(request), strict=False)
    except queries.BadQuery as error:
        context["filter_error"] = str(error)
    else:
        page = queries.messages_page(filters)
        context["rows"] = page.items
        context["next_url"] = _next_url(request, page.next)
        context["searched"] = any(
            request.GET.get(name) for name in queries.MESSAGE_PARAMS if name != "cursor"
        )
    template = "messages.html#results" if wants_partial(request) else "messages.html"
    return render(request, template, context)


def _message_or_404(message_id):
    if message_id > MAX_ID:
        raise Http404("No such message.")
    found = Message.objects.filter(id=message_id).first()
    if found is None:
        raise Http404("No such message.")
    return found


@access.page(access.VIEWER)
@require_GET
def message(request, message_id):
    found = _message_or_404(message_id)
    names = masked_names()
    properties = mask_properties(found.properties, names)
    body, body_note, _ = serialize.shown_body(found, names)
    views = serialize.body_views(body)
    context = {
        "message": found,
        "properties": display.property_rows(properties),
        "headers": display.header_rows((properties or {}).get("headers")),
        "body_text": views["body_text"],
        "body_json": (
            display.pretty_json(views["body_json"]) if views["body_json"] is not None else None
        ),
        "body_tree": json_tree(views["body_json"]) if views["body_json"] is not None else None,
        "body_hex": display.hexdump(body),
        "hex_cut": len(body) > display.HEX_LIMIT,
        "stored_size": len(bytes(found.body or b"")),
        "body_note": body_note,
        "flow": Flow.objects.filter(id=found.flow_id).first() if found.flow_id else None,
        "exchange_label": display.exchange_label(found.exchange),
    }
    return render(request, "message.html", context)


_EXTENSIONS = {"application/json": "json", "text/plain": "txt", "application/xml": "xml"}


@access.page(access.VIEWER)
@require_GET
def message_body(request, message_id):
    """The stored (masked) body as a file."""
    found = _message_or_404(message_id)
    body, _, _ = serialize.shown_body(found)
    content_type = str((found.properties or {}).get("content_type") or "")
    extension = _EXTENSIONS.get(content_type.split(";")[0].strip().lower(), "bin")
    response = HttpResponse(body, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="message-{found.id}.{extension}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@access.page(access.VIEWER)
@require_GET
def flows(request):
    context = {
        "form": request.GET,
        "rows": [],
        "next_url": None,
        "statuses": ("pending", "complete", "timeout", "orphan"),
        "export_query": _export_query(request, queries.FLOW_PARAMS),
        **_tap_line(),
    }
    try:
        filters = queries.flow_filters(_page_params(request), strict=False)
    except queries.BadQuery as error:
        context["filter_error"] = str(error)
    else:
        page = queries.flows_page(filters)
        context["rows"] = page.items
        context["next_url"] = _next_url(request, page.next)
    template = "flows.html#results" if wants_partial(request) else "flows.html"
    return render(request, template, context)


@access.page(access.VIEWER)
@require_GET
def flow(request, flow_id):
    if flow_id > MAX_ID:
        raise Http404("No such flow.")
    found = Flow.objects.filter(id=flow_id).first()
    if found is None:
        raise Http404("No such flow.")
    events = list(
        Message.objects.filter(flow_id=found.id).defer("body").order_by("captured_at", "id")
    )
    start = found.requested_at or found.started_at
    rows = [
        {
            "message": event,
            "offset_ms": round((event.captured_at - start).total_seconds() * 1000, 3),
            "role": _role(found, event),
            "exchange_label": display.exchange_label(event.exchange),
        }
        for event in events
    ]
    context = {
        "flow": found,
        "rows": rows,
        "timeline": display.timeline(found, now=timezone.now()),
        "service_url": "?" + urlencode({"service": found.service, "vhost": found.vhost}),
        "conversation_url": "?"
        + urlencode({"correlation_id": found.correlation_id or "", "vhost": found.vhost}),
    }
    return render(request, "flow.html", context)


def _role(flow, event):
    if event.id == flow.request_id:
        return "request"
    if event.id == flow.reply_id:
        return "reply"
    if event.event == "deliver" and event.reply_to == flow.reply_to and event.reply_to:
        return "request delivered" + (" (redelivered)" if event.redelivered else "")
    if event.event == "deliver":
        return "reply delivered"
    return "another reply"
