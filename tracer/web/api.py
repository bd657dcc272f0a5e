"""The tracer's JSON API (docs/architecture.md): messages, flows, statistics, tap status.

Every parameter is checked (tracer/web/queries.py): a mistake is a 400 with the
reason in words. Times are ISO 8601 UTC with microseconds; lists are
{"results": [...], "next": cursor or null}, newest first. What leaves here is
masked (tracer/web/serialize.py).
"""

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from console import access
from tracer.export import otlp
from tracer.masking import masked_names
from tracer.models import Flow, Message
from tracer.store import stats, status
from tracer.times import iso
from tracer.web import queries, serialize

MAX_ID = 2**63 - 1


def _json(data, status_code=200):
    return JsonResponse(data, status=status_code, json_dumps_params={"ensure_ascii": False})


def _bad(error):
    return access.api_error(400, str(error))


@access.api(access.VIEWER)
@require_GET
def messages(request):
    try:
        filters = queries.message_filters(request.GET)
    except queries.BadQuery as error:
        return _bad(error)
    page = queries.messages_page(filters)
    names = masked_names()
    return _json(
        {"results": [serialize.message_json(m, names) for m in page.items], "next": page.next}
    )


@access.api(access.VIEWER)
@require_GET
def message(request, message_id):
    found = Message.objects.filter(id=message_id).first() if message_id <= MAX_ID else None
    if found is None:
        return access.api_error(404, f"No captured message {message_id}.")
    return _json(serialize.message_detail_json(found))


@access.api(access.VIEWER)
@require_GET
def flows(request):
    try:
        filters = queries.flow_filters(request.GET)
    except queries.BadQuery as error:
        return _bad(error)
    page = queries.flows_page(filters)
    return _json({"results": [serialize.flow_json(f) for f in page.items], "next": page.next})


@access.api(access.VIEWER)
@require_GET
def flow(request, flow_id):
    found = Flow.objects.filter(id=flow_id).first() if flow_id <= MAX_ID else None
    if found is None:
        return access.api_error(404, f"No flow {flow_id}.")
    names = masked_names()
    data = serialize.flow_json(found)
    data["messages"] = [
        serialize.message_json(m, names)
        for m in Message.objects.filter(flow_id=found.id)
        .defer("body")
        .order_by("captured_at", "id")
    ]
    return _json(data)


@access.api(access.VIEWER)
@require_GET
def flow_stats(request):
    try:
        filters = queries.stats_filters(request.GET)
    except queries.BadQuery as error:
        return _bad(error)
    # The window these figures cover, said with them: from/to as asked, or the default.
    since, until = stats.stats_window(filters.pop("since"), filters.pop("until"))
    services = stats.service_stats(**filters, since=since, until=until)
    return _json({"from": iso(since), "to": iso(until), "services": services})


@access.api(access.VIEWER)
@require_GET
def tap_status(request):
    report = status.tap_status()
    # What leaves Warren besides the pages: spans sent to WARREN_OTLP_ENDPOINT, and lost.
    report["export"] = otlp.export_status()
    return _json(report)
