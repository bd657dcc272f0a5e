"""Replay jobs as pages and the JSON API show them: figures, rows, masked bodies.

Everything that leaves Warren here passes through tracer.masking first: the
headers a replay sent, the bodies of replies. Replays themselves send the
originals (see replay.outgoing).
"""

import base64
from collections.abc import Iterable
from datetime import timedelta

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from replay import rpc
from replay.models import ReplayItem, ReplayJob
from tracer.masking import mask_body, mask_properties
from tracer.models import Message
from tracer.times import iso

API_LIST_LIMIT = 1000
PAGE_SIZE = 50
BODY_PREVIEW = 4000


def message_href(message_id):
    """The message's page when the tracer has one, else None."""
    if not message_id:
        return None
    for name in ("message", "tracer:message"):
        try:
            return reverse(name, args=[message_id])
        except NoReverseMatch:
            continue
    return None


def flow_href(flow_id):
    if not flow_id:
        return None
    for name in ("flow", "tracer:flow"):
        try:
            return reverse(name, args=[flow_id])
        except NoReverseMatch:
            continue
    return None


def progress(job):
    """Figures for the progress bar and tiles."""
    planned = job.items.filter(state=ReplayItem.PLANNED).count() if job.dry_run else 0
    done = job.confirmed + job.failed + planned
    percent = round(100.0 * done / job.total, 1) if job.total else 100.0
    elapsed = None
    if job.started_at:
        end = job.finished_at or timezone.now()
        elapsed = max(0.0, (end - job.started_at).total_seconds())
    rate = round(job.sent / elapsed, 1) if elapsed and job.sent else None
    remaining = max(0, job.remaining - planned)
    eta = None
    if job.status == ReplayJob.RUNNING and rate and remaining:
        eta = remaining / rate
    in_flight = (job.report or {}).get("in_flight", 0) if job.is_finished else 0
    return {
        "done": done,
        "percent": percent,
        "elapsed_s": elapsed,
        "rate": rate,
        "eta_s": eta,
        "remaining": remaining,
        "in_flight": in_flight,
        "planned": planned,
    }


def status_kind(status):
    return {
        ReplayJob.QUEUED: "info",
        ReplayJob.RUNNING: "info",
        ReplayJob.DONE: "ok",
        ReplayJob.FAILED: "bad",
        ReplayJob.CANCELLED: "warn",
        ReplayJob.INTERRUPTED: "bad",
        ReplayItem.CONFIRMED: "ok",
        ReplayItem.PLANNED: "info",
        ReplayItem.SENDING: "warn",
        ReplayItem.PENDING: "",
    }.get(status, "")


def _text(body):
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        return None


def shown_properties(properties):
    return mask_properties(properties or {})


def reply_row(item, original_bodies=None):
    """One RPC item for the API and the page: masked bodies, latencies, changed."""
    original = (original_bodies or {}).get(item.original_reply_id)
    body = None if item.reply_body is None else mask_body(bytes(item.reply_body))
    original_masked = None if original is None else mask_body(original)
    return {
        "position": item.position,
        "message_id": item.message_id,
        "flow_id": item.flow_id,
        "correlation_id": item.correlation_id,
        "status": item.reply_status,
        "latency_ms": item.latency_ms,
        "original_latency_ms": item.original_latency_ms,
        "original_reply_id": item.original_reply_id,
        "changed": item.changed,
        "body_base64": None if body is None else base64.b64encode(body).decode("ascii"),
        "body_text": None if body is None else _text(body),
        "original_body_text": None if original_masked is None else _text(original_masked),
    }


def original_bodies(items):
    ids = [item.original_reply_id for item in items if item.original_reply_id]
    return {
        message_id: bytes(body)
        for message_id, body in Message.objects.filter(id__in=ids).values_list("id", "body")
    }


def api_errors(job, limit=100):
    errors = [{"position": None, "message_id": None, "error": words} for words in job.errors]
    failed = job.items.filter(state=ReplayItem.FAILED).order_by("position")[:limit]
    errors += [
        {"position": item.position, "message_id": item.message_id, "error": item.error}
        for item in failed
    ]
    return errors


def job_api(job):
    """GET /api/replays/<id> (docs/architecture.md), with a few more fields after the contract's."""
    replies = []
    if job.await_reply:
        items = list(job.items.exclude(reply_status="").order_by("position")[:API_LIST_LIMIT])
        bodies = original_bodies(items)
        replies = [reply_row(item, bodies) for item in items]
    answer = {
        "id": job.id,
        "status": job.api_status,
        "total": job.total,
        "sent": job.sent,
        "confirmed": job.confirmed,
        "failed": job.failed,
        "errors": api_errors(job),
        "replies": replies,
        "state": job.status,
        "kind": job.kind,
        "dry_run": job.dry_run,
        "description": job.description,
        "created_by": job.username,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "cancel_requested": job.cancel_requested,
        "in_flight": progress(job)["in_flight"],
        "target": {
            "broker": job.broker or "default",
            "vhost": job.vhost,
            "exchange": job.exchange,
            "routing_key": job.routing_key,
            "dead_letter_how": job.redrive_how or None,
        },
        "rate_per_s": job.rate_per_s,
        "report": job.report,
    }
    if job.dry_run:
        planned = job.items.order_by("position")[:API_LIST_LIMIT]
        answer["planned"] = [
            {
                "position": item.position,
                "message_id": item.message_id,
                "vhost": item.vhost,
                "exchange": item.exchange,
                "routing_key": item.routing_key,
                "properties": shown_properties(item.properties),
                "body_size": item.body_size,
                "state": item.state,
                "notes": item.error,
            }
            for item in planned
        ]
    return answer


# A replayed message carries the original's id (REPLAY_HEADER); the tap stores
# its copy with replay_of set. The copy of an item is the one captured closest to
# when it was sent, from just before that until this long after its confirm.
COPY_CLOCK_SLACK = timedelta(seconds=2)
COPY_WITHIN = timedelta(seconds=60)


def captured_copies(items: Iterable[ReplayItem]) -> dict[int, int]:
    """item id -> id of the captured copy of what the item sent (when the tap saw it)."""
    # (item id, original message id, sent at, the last moment a copy may be captured)
    sent = [
        (
            item.id,
            item.message_id,
            item.sent_at,
            (item.confirmed_at or item.sent_at) + COPY_WITHIN,
        )
        for item in items
        if item.message_id and item.sent_at and item.published
    ]
    if not sent:
        return {}
    candidates: dict[int, list] = {}
    for copy_id, original_id, captured_at in (
        Message.objects.filter(
            replay_of__in={original for _, original, _, _ in sent},
            event="publish",
            captured_at__gte=min(at for _, _, at, _ in sent) - COPY_CLOCK_SLACK,
            captured_at__lte=max(until for _, _, _, until in sent),
        )
        .order_by("captured_at", "id")
        .values_list("id", "replay_of", "captured_at")
    ):
        if original_id is not None:
            candidates.setdefault(original_id, []).append((captured_at, copy_id))
    copies: dict[int, int] = {}
    for item_id, original, sent_at, until in sent:
        taken = set(copies.values())
        near = [
            (abs((captured_at - sent_at).total_seconds()), copy_id)
            for captured_at, copy_id in candidates.get(original, [])
            if sent_at - COPY_CLOCK_SLACK <= captured_at <= until and copy_id not in taken
        ]
        if near:  # the capture closest to the moment it was sent
            copies[item_id] = min(near)[1]
    return copies


def item_rows(job, page):
    """A page of the job's items for the table, and the pager figures."""
    count = job.total
    pages = max(1, (count + PAGE_SIZE - 1) // PAGE_SIZE)
    page = min(max(1, page), pages)
    items = list(job.items.order_by("position")[(page - 1) * PAGE_SIZE : page * PAGE_SIZE])
    bodies = _planned_bodies(job, items) if job.dry_run else {}
    copies = {} if job.dry_run else captured_copies(items)
    rows = []
    for item in items:
        rows.append(
            {
                "item": item,
                "kind": status_kind(item.state),
                "message_href": message_href(item.message_id),
                "copy_id": copies.get(item.id),
                "copy_href": message_href(copies.get(item.id)),
                "properties": shown_properties(item.properties),
                "body": bodies.get(item.id),
            }
        )
    return rows, {"page": page, "pages": pages, "count": count}


def _planned_bodies(job, items):
    """item id -> the body a dry run would send, masked and cut for the page."""
    if job.body is not None:
        shown = rpc.shown(bytes(job.body))[:BODY_PREVIEW]
        return {item.id: shown for item in items}
    stored = dict(
        Message.objects.filter(
            id__in=[item.message_id for item in items if item.message_id]
        ).values_list("id", "body")
    )
    bodies = {}
    for item in items:
        body = stored.get(item.message_id) if item.message_id else item.peeked_body
        if body is not None:
            bodies[item.id] = rpc.shown(bytes(body))[:BODY_PREVIEW]
    return bodies


def diff_context(job, item):
    """The side-by-side and diff of one RPC item's reply against the captured one."""
    original = None
    if item.original_reply_id:
        original = (
            Message.objects.filter(id=item.original_reply_id).values_list("body", flat=True).first()
        )
        original = None if original is None else bytes(original)
    new = None if item.reply_body is None else bytes(item.reply_body)
    lines = (
        rpc.diff_lines(original, new, job.ignore_fields)
        if original is not None and new is not None
        else []
    )
    masked_same = bool(original is not None and new is not None and not lines)
    return {
        "original_body": None if original is None else rpc.shown(original),
        "new_body": None if new is None else rpc.shown(new),
        "diff": lines,
        "changed_in_masked_field": bool(item.changed and masked_same),
        "request_href": message_href(item.message_id),
        "original_reply_href": message_href(item.original_reply_id),
        "flow_href": flow_href(item.flow_id),
    }
