"""Out of Warren and back in: /metrics, export files, capture-file imports.

- GET /metrics — Prometheus text (tracer/export/metrics.py): a viewer's bearer
  token, or a client address inside WARREN_METRICS_ALLOW.
- GET /api/messages/export, /api/flows/export — `format=jsonl|csv` plus the
  list endpoints' filters; streamed a chunk at a time (tracer.web.queries'
  queries, newest first), masked as the API masks. Messages in JSON Lines carry
  their bodies (`bodies=0` leaves them out): a capture file.
- POST /api/imports (operator) — a capture file back in; 201 with the new ids,
  ready for POST /api/replays. The Imports page does the same with a form.

Under Daphne (ASGI) the stream is an async iterator whose chunks are read in
Django's sync thread one at a time; under WSGI a plain iterator: either way no
more than one chunk is ever in memory.
"""

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from types import SimpleNamespace
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from console import access
from console.models import ApiToken, AuditEntry
from rabbit import cluster
from tracer.export import capture
from tracer.export import metrics as warren_metrics
from tracer.export.access import address_allowed
from tracer.export.models import Import
from tracer.masking import mask_body, masked_names
from tracer.models import Flow, Message
from tracer.web import queries, serialize

FORMATS = ("jsonl", "csv")
CHUNK_ROWS = 1000
CHUNK_ROWS_WITH_BODIES = 200
FLUSH_BYTES = 64 * 1024
EXPORT_MESSAGE_PARAMS = tuple(p for p in queries.MESSAGE_PARAMS if p not in ("limit", "cursor"))
EXPORT_FLOW_PARAMS = tuple(p for p in queries.FLOW_PARAMS if p not in ("limit", "cursor"))
MESSAGE_COLUMNS = (*serialize.MESSAGE_FIELDS, "duplicates")
FLOW_COLUMNS = (*serialize.FLOW_FIELDS, "backlog")
REPLAY_LINK_MAX = 1000  # more ids than this do not fit a link: the API takes them

# --- /metrics ----------------------------------------------------------------------


def _metrics_reader(request: HttpRequest) -> tuple[bool, str]:
    """(allowed, why not) for a scrape."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        user = ApiToken.objects.user_for(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            return False, "The bearer token is not valid."
        if not access.can_view(user):
            return False, "The token's user has no role: viewer or operator is needed."
        return True, ""
    if address_allowed(request.META.get("REMOTE_ADDR")):
        return True, ""
    return False, "Send Authorization: Bearer <API token>, or scrape from WARREN_METRICS_ALLOW."


@access.public
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    allowed, why = _metrics_reader(request)
    if not allowed:
        response = access.api_error(401, why)
        response["WWW-Authenticate"] = 'Bearer realm="warren-metrics"'
        return response
    body = warren_metrics.exposition(cluster.tracing_map)
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)


# --- exports -----------------------------------------------------------------------


def _keyset_chunks(
    queryset: QuerySet[Any], field: str, size: int, columns: tuple[str, ...]
) -> Iterator[list[Any]]:
    """A queryset ordered (-field, -id), a chunk at a time, each after the last row.

    Rows come as plain objects with just `columns` as attributes (what the JSON
    shapes read): no model instances, a third of the time a row takes."""
    after: tuple[Any, int] | None = None
    while True:
        page = queryset
        if after is not None:
            when, row_id = after
            page = page.filter(Q(**{f"{field}__lt": when}) | Q(**{field: when, "id__lt": row_id}))
        rows = [SimpleNamespace(**values) for values in page.values(*columns)[:size]]
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = (getattr(rows[-1], field), rows[-1].id)


def _csv_value(value: Any) -> Any:
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return "" if value is None else value


def _encode(rows: Iterable[dict[str, Any]], kind: str, columns: tuple[str, ...]) -> Iterator[bytes]:
    """JSON Lines or CSV, handed on in pieces of about FLUSH_BYTES."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    parts: list[bytes] = []
    size = 0
    if kind == "csv":
        writer.writerow(columns)
    for row in rows:
        if kind == "csv":
            writer.writerow([_csv_value(row.get(name)) for name in columns])
            if buffer.tell() >= FLUSH_BYTES:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        else:
            line = orjson.dumps(row) + b"\n"
            parts.append(line)
            size += len(line)
            if size >= FLUSH_BYTES:
                yield b"".join(parts)
                parts, size = [], 0
    tail = buffer.getvalue().encode() if kind == "csv" else b"".join(parts)
    if tail:
        yield tail


def _stored_columns(model: type[Message] | type[Flow], with_body: bool) -> tuple[str, ...]:
    """Every stored column (what the JSON shapes read, whatever they come to read)."""
    return tuple(
        field.attname
        for field in model._meta.concrete_fields
        if with_body or field.attname != "body"
    )


def message_rows(filters: dict[str, Any], bodies: bool) -> Iterator[dict[str, Any]]:
    names = masked_names()
    queryset = queries.message_queryset(filters)
    needle = filters["q"].encode("utf-8") if filters["q"] else None
    columns = _stored_columns(Message, with_body=bodies or needle is not None)
    size = CHUNK_ROWS_WITH_BODIES if bodies or needle else CHUNK_ROWS
    for chunk in _keyset_chunks(queryset, "captured_at", size, columns):
        for message in chunk:
            # As the list does: a body matching only inside a masked value is no match.
            if needle is not None and needle not in mask_body(bytes(message.body), names):
                continue
            row = serialize.message_json(message, names)
            if bodies:
                body = capture.exported_body(message, names)
                row["body_base64"] = serialize.body_views(body)["body_base64"]
            yield row


def flow_rows(filters: dict[str, Any]) -> Iterator[dict[str, Any]]:
    columns = _stored_columns(Flow, with_body=False)
    for chunk in _keyset_chunks(queries.flow_queryset(filters), "started_at", CHUNK_ROWS, columns):
        yield from (serialize.flow_json(flow) for flow in chunk)


async def _in_sync_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Each chunk made in Django's sync thread (where its database connection is)."""
    sentinel = b""
    take: Callable[[], Awaitable[bytes]] = sync_to_async(
        lambda: next(chunks, sentinel), thread_sensitive=True
    )
    while True:
        chunk = await take()
        if chunk is sentinel:
            return
        yield chunk


def _stream(
    request: HttpRequest, chunks: Iterator[bytes], kind: str, name: str
) -> StreamingHttpResponse:
    content: Iterator[bytes] | AsyncIterator[bytes] = chunks
    if isinstance(request, ASGIRequest):
        content = _in_sync_thread(chunks)
    content_type = "text/csv; charset=utf-8" if kind == "csv" else "application/x-ndjson"
    response = StreamingHttpResponse(content, content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="warren-{name}-{stamp}.{kind}"'
    response["Cache-Control"] = "no-store"
    return response


def _export_options(request: HttpRequest, allowed: tuple[str, ...]) -> tuple[str, bool]:
    unknown = sorted(set(request.GET) - {*allowed, "format", "bodies"})
    if unknown:
        raise queries.BadQuery(
            f"Unknown parameter '{unknown[0]}'; an export takes format, bodies and the list's "
            f"filters: {', '.join(allowed)}."
        )
    kind = request.GET.get("format") or "jsonl"
    if kind not in FORMATS:
        raise queries.BadQuery(f"'format' must be jsonl or csv, not {kind!r}.")
    bodies = request.GET.get("bodies", "1" if kind == "jsonl" else "0")
    if bodies not in ("0", "1", "true", "false"):
        raise queries.BadQuery(f"'bodies' must be 1 or 0, not {bodies!r}.")
    wants_bodies = bodies in ("1", "true")
    if wants_bodies and kind == "csv":
        raise queries.BadQuery("CSV carries no bodies: use format=jsonl for a capture file.")
    return kind, wants_bodies


def _filters_only(request: HttpRequest) -> dict[str, str]:
    return {k: str(v) for k, v in request.GET.items() if k not in ("format", "bodies")}


def export_messages(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    try:
        kind, bodies = _export_options(request, EXPORT_MESSAGE_PARAMS)
        filters = queries.message_filters(_filters_only(request), strict=False)
    except queries.BadQuery as error:
        return access.api_error(400, str(error))
    columns = MESSAGE_COLUMNS + (("body_base64",) if bodies else ())
    rows = message_rows(filters, bodies)
    return _stream(request, _encode(rows, kind, columns), kind, "messages")


def export_flows(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    try:
        kind, _ = _export_options(request, EXPORT_FLOW_PARAMS)
        if request.GET.get("bodies") in ("1", "true"):
            raise queries.BadQuery("Flows have no bodies: export their messages for those.")
        filters = queries.flow_filters(_filters_only(request), strict=False)
    except queries.BadQuery as error:
        return access.api_error(400, str(error))
    return _stream(request, _encode(flow_rows(filters), kind, FLOW_COLUMNS), kind, "flows")


messages_export = access.api(access.VIEWER)(require_GET(export_messages))
flows_export = access.api(access.VIEWER)(require_GET(export_flows))


# --- imports -----------------------------------------------------------------------


def _lines(stream: Any) -> Iterator[bytes]:
    while True:
        line = stream.readline()
        if not line:
            return
        yield line


def _imported_json(imported: capture.Imported) -> dict[str, Any]:
    found = imported.capture
    return {
        "id": found.id,
        "messages": found.messages,
        "vhosts": found.vhosts,
        "message_ids": imported.message_ids,
        "first_captured_at": found.first_captured_at.isoformat()
        if found.first_captured_at
        else None,
        "last_captured_at": found.last_captured_at.isoformat() if found.last_captured_at else None,
        "replay": {
            "method": "POST",
            "path": reverse("api_replays"),
            "message_ids": imported.message_ids,
        },
    }


def _audit(request: HttpRequest, result: str, detail: str) -> None:
    AuditEntry.record(request, action="import", result=result, target="capture file", detail=detail)


@access.api(access.OPERATOR)
@require_POST
def imports_create(request: HttpRequest) -> HttpResponse:
    filename = request.headers.get("X-Filename", "")
    try:
        imported = capture.import_capture(_lines(request), request.user, filename)
    except capture.CaptureError as error:
        _audit(request, AuditEntry.FAILED, str(error)[:1000])
        return JsonResponse(
            {"error": "Nothing imported: " + str(error), "errors": error.errors}, status=400
        )
    _audit(
        request,
        AuditEntry.OK,
        f"import #{imported.capture.id}: {imported.capture.messages} messages",
    )
    return JsonResponse(_imported_json(imported), status=201)


def _imports_context(errors: list[str], done: Import | None = None) -> dict[str, Any]:
    return {
        "errors": errors,
        "done": {"capture": done, "replay_url": _replay_url(done)} if done else None,
        "imports": [
            {"capture": row, "replay_url": _replay_url(row)}
            for row in Import.objects.order_by("-created_at")[:50]
        ],
    }


@access.page(access.VIEWER)
@require_GET
def imports_page(request: HttpRequest) -> HttpResponse:
    done = request.GET.get("done", "")
    found = Import.objects.filter(id=int(done)).first() if done.isdigit() else None
    return render(request, "imports.html", _imports_context([], found))


@access.page(access.OPERATOR)
@require_POST
def imports_upload(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    if upload is None:
        errors = ["Choose a capture file (a JSON Lines export of messages with bodies)."]
        return render(request, "imports.html", _imports_context(errors), status=400)
    try:
        imported = capture.import_capture(_lines(upload), request.user, upload.name or "")
    except capture.CaptureError as error:
        _audit(request, AuditEntry.FAILED, str(error)[:1000])
        return render(request, "imports.html", _imports_context(error.errors), status=400)
    found = imported.capture
    _audit(request, AuditEntry.OK, f"import #{found.id}: {found.messages} messages")
    return redirect(reverse("imports") + f"?done={found.id}")


def _replay_url(found: Import) -> str | None:
    if found.messages > REPLAY_LINK_MAX:
        return None
    ids = ",".join(
        str(i) for i in found.items.order_by("message_id").values_list("message_id", flat=True)
    )
    return reverse("replay_new") + f"?message={ids}" if ids else None
