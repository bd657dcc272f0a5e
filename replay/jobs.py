"""Starting, cancelling and resuming replay jobs: the checks, the records, the audit.

Every path into a replay (the page, the API) goes through `create_job`, so
the safety rules live in one place: operators only (the views' access
decorators), a second confirmation above WARREN_REPLAY_CONFIRM_ABOVE
messages, no silently incomplete bodies, and an audit entry for each attempt,
refused or not.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from console.brokers import all_brokers, get_broker
from console.models import AuditEntry
from rabbit.brokers import default_broker
from replay import selection
from replay.models import ReplayItem, ReplayJob
from tracer.models import Flow

log = logging.getLogger("replay")

ITEM_CHUNK = 1000


class Refusal(Exception):  # noqa: N818 - an answer to the operator, not a program error
    """The job is not started; `status` and `extra` go into the API answer."""

    def __init__(self, message, status=400, **extra):
        super().__init__(message)
        self.message = message
        self.status = status
        self.extra = extra


def choose(spec, broker_client=None):
    """The Selection a spec asks for (SelectionError when it cannot be made)."""
    if spec.message_ids is not None:
        return selection.by_message_ids(spec.message_ids)
    if spec.flow_ids is not None:
        return selection.by_flow_ids(spec.flow_ids)
    if spec.filter is not None:
        return selection.by_filter(spec.filter)
    dead = spec.dead_letters
    if dead["from"] == "peek":
        client = broker_client or default_broker().client()
        chosen = selection.peeked(client, dead["vhost"], dead["queue"], dead["count"] or 100)
    else:
        chosen = selection.dead_letters_captured(dead["vhost"], dead["queue"], dead["count"])
    chosen.source["dead_letters"]["how"] = dead["how"]
    return chosen


def target_words(job_or_spec):
    """Where the messages go, in words."""
    parts = []
    if getattr(job_or_spec, "redrive_how", ""):
        how = job_or_spec.redrive_how
        parts.append(
            "back to the queue each died in (x-death)"
            if how == "queue"
            else "through the exchange and routing key each was first published with (x-death)"
        )
    else:
        exchange, key = job_or_spec.exchange, job_or_spec.routing_key
        if exchange is None and key is None:
            parts.append("original exchange and routing key")
        else:
            if exchange is None:
                exchange_words = "(as captured)"
            else:
                exchange_words = f"'{exchange}'" if exchange else "(AMQP default)"
            key_words = "(as captured)" if key is None else f"'{key}'"
            parts.append(f"exchange {exchange_words}, routing key {key_words}")
    if job_or_spec.vhost is not None:
        parts.append(f"in vhost '{job_or_spec.vhost}'")
    if job_or_spec.broker:
        parts.append(f"on broker '{job_or_spec.broker}'")
    return " ".join(parts)


def _refuse(request, message, status=400, target="", **extra):
    AuditEntry.record(request, "replay", AuditEntry.FAILED, target=target, detail=message)
    raise Refusal(message, status, **extra)


def _rpc_originals(refs):
    """flow id -> (reply message id, latency ms) for the requests among refs."""
    flow_ids = [ref.flow_id for ref in refs if ref.flow_id and ref.reply_to]
    found = {}
    for start in range(0, len(flow_ids), ITEM_CHUNK):
        chunk = flow_ids[start : start + ITEM_CHUNK]
        for flow_id, reply_id, latency in Flow.objects.filter(id__in=chunk).values_list(
            "id", "reply_id", "latency_ms"
        ):
            found[flow_id] = (reply_id, latency)
    return found


def _items(job, chosen, rpc):
    originals = _rpc_originals(chosen.refs) if rpc else {}
    position = 0
    for ref in chosen.refs:
        reply_id, latency = originals.get(ref.flow_id, (None, None))
        yield ReplayItem(
            job=job,
            position=position,
            message_id=ref.message_id,
            flow_id=ref.flow_id,
            captured_at=ref.captured_at,
            original_reply_id=reply_id,
            original_latency_ms=latency,
        )
        position += 1
    for described, body in chosen.peeked:
        yield ReplayItem(job=job, position=position, peeked=described, peeked_body=body)
        position += 1


def create_job(request, spec, chosen=None):
    """Checks a spec, records the job and its items, audits, and queues it for a worker.

    Raises Refusal (audited) when it must not start. `chosen` is the Selection
    when the caller already made it (the form shows it before asking).
    """
    what = "replay"
    if spec.broker and get_broker(spec.broker) is None:
        known = ", ".join(broker.slug for broker in all_brokers())
        _refuse(request, f"No broker '{spec.broker}' (known: {known}).", 400)
    if chosen is None:
        try:
            chosen = choose(spec)
        except selection.SelectionError as error:
            _refuse(request, error.message, error.status)
    what = chosen.description
    where = target_words(spec)
    if chosen.total == 0:
        _refuse(request, f"Nothing to replay: no {chosen.description}.", 400, target=what)
    if chosen.truncated and spec.body is None and not spec.allow_truncated:
        _refuse(
            request,
            f"{chosen.truncated:,} of the {chosen.total:,} captured bodies were cut at "
            f"{settings.WARREN_BODY_LIMIT:,} bytes (WARREN_BODY_LIMIT): replaying them would send "
            "incomplete messages. Replace the body, leave them out, or allow sending the cut "
            "bodies (allow_truncated).",
            409,
            target=what,
            truncated=chosen.truncated,
        )
    threshold = settings.WARREN_REPLAY_CONFIRM_ABOVE
    if chosen.total > threshold and not spec.confirm and not spec.dry_run:
        _refuse(
            request,
            f"This replays {chosen.total:,} messages, more than {threshold:,}: "
            "confirm it a second time (confirm: true).",
            409,
            target=what,
            total=chosen.total,
            confirm_above=threshold,
        )
    rpc = spec.await_reply
    kind = ReplayJob.REDRIVE if spec.dead_letters else ReplayJob.RPC if rpc else ReplayJob.PUBLISH
    with transaction.atomic():
        job = ReplayJob.objects.create(
            created_by=request.user if request.user.is_authenticated else None,
            username=request.user.get_username(),
            kind=kind,
            description=what,
            source={**chosen.source, "notes": chosen.notes},
            broker=spec.broker,
            vhost=spec.vhost,
            exchange=spec.exchange,
            routing_key=spec.routing_key,
            redrive_how=spec.redrive_how,
            body=spec.body,
            headers=spec.headers,
            headers_replace=spec.headers_replace,
            keep_message_id=spec.keep_message_id,
            keep_timestamp=spec.keep_timestamp,
            allow_truncated=spec.allow_truncated,
            rate_per_s=spec.rate_per_s,
            keep_timing=spec.keep_timing,
            speed=spec.speed,
            await_reply=rpc,
            reply_timeout_s=spec.reply_timeout_s,
            ignore_fields=spec.ignore_fields,
            dry_run=spec.dry_run,
            total=chosen.total,
        )
        batch = []
        for item in _items(job, chosen, rpc):
            batch.append(item)
            if len(batch) == ITEM_CHUNK:
                ReplayItem.objects.bulk_create(batch)
                batch = []
        if batch:
            ReplayItem.objects.bulk_create(batch)
        AuditEntry.record(
            request,
            "replay",
            AuditEntry.OK,
            broker=spec.broker or "default",
            vhost=spec.vhost or ", ".join(chosen.vhosts)[:255],
            target=f"{what} → {where}",
            detail=f"job #{job.id}: {job_summary(job)}",
        )
        transaction.on_commit(lambda: enqueue(job.id))
    return job


def job_summary(job):
    """The job's options in one line, for the audit log."""
    words = [f"{job.total:,} messages"]
    if job.dry_run:
        words.append("dry run")
    if job.await_reply:
        words.append(f"awaiting replies up to {job.reply_timeout_s:g} s")
    words.append(f"at most {job.rate_per_s:g}/s" if job.rate_per_s else "no rate limit")
    if job.keep_timing:
        words.append(f"original timing ×{job.speed:g}")
    if job.body is not None:
        words.append(f"body replaced ({len(job.body)} bytes)")
    if job.headers is not None:
        words.append("headers replaced" if job.headers_replace else "headers edited")
    words.append("message_id kept" if job.keep_message_id else "message_id dropped")
    words.append("timestamp kept" if job.keep_timestamp else "timestamp dropped")
    if job.allow_truncated:
        words.append("cut bodies allowed")
    return "; ".join(words)


def enqueue(job_id):
    """Hands the job to a Celery worker (WARREN_REPLAY_QUEUE names a queue, else the default)."""
    from replay.tasks import run_replay

    queue = getattr(settings, "WARREN_REPLAY_QUEUE", None)
    try:
        if queue:
            run_replay.apply_async((job_id,), queue=queue)
        else:
            run_replay.delay(job_id)
    except Exception as error:  # noqa: BLE001 - Redis down: the job must say so, not vanish
        log.exception("cannot queue replay job %s", job_id)
        ReplayJob.objects.filter(id=job_id, status=ReplayJob.QUEUED).update(
            status=ReplayJob.FAILED,
            finished_at=timezone.now(),
            errors=[f"could not hand the job to a worker: {error}"],
        )


def cancel_job(request, job):
    """Stops a job: at once when still queued, else between two publishes."""
    cancelled = ReplayJob.objects.filter(id=job.id, status=ReplayJob.QUEUED).update(
        status=ReplayJob.CANCELLED,
        cancel_requested=True,
        cancelled_by=request.user.get_username(),
        finished_at=timezone.now(),
    )
    if not cancelled:
        cancelled = ReplayJob.objects.filter(id=job.id, status=ReplayJob.RUNNING).update(
            cancel_requested=True, cancelled_by=request.user.get_username()
        )
    job.refresh_from_db()
    AuditEntry.record(
        request,
        "replay_cancel",
        AuditEntry.OK if cancelled else AuditEntry.FAILED,
        broker=job.broker or "default",
        target=f"replay #{job.id}",
        detail=(
            f"{job.confirmed:,} of {job.total:,} confirmed when asked"
            if cancelled
            else f"not running (it is {job.status})"
        ),
    )
    return bool(cancelled)


def resume_job(request, job, in_flight="resend"):
    """Queues the rest of a stopped job again; confirmed items are never sent again.

    `in_flight`: what to do with an item the worker had published when it died,
    whose confirm never came back ("resend" it or "skip" it): it may or may not
    have reached the broker.
    """
    if job.status not in ReplayJob.RESUMABLE:
        AuditEntry.record(
            request,
            "replay_resume",
            AuditEntry.FAILED,
            target=f"replay #{job.id}",
            detail=f"not resumable (it is {job.status})",
        )
        raise Refusal(f"Replay #{job.id} is {job.status}: only a stopped job resumes.", 409)
    if in_flight not in ("resend", "skip"):
        raise Refusal("in_flight is resend or skip.", 400)
    with transaction.atomic():
        sending = job.items.filter(state=ReplayItem.SENDING)
        if in_flight == "resend":
            sending.update(state=ReplayItem.PENDING)
        else:
            sending.update(
                state=ReplayItem.FAILED,
                error="in flight when the worker stopped: it may have arrived; not sent again",
            )
        left = job.items.filter(state=ReplayItem.PENDING).count()
        if not left:
            raise Refusal(f"Replay #{job.id} has nothing left to send.", 409)
        counts = job.counts_from_items()
        ReplayJob.objects.filter(id=job.id).update(
            status=ReplayJob.QUEUED,
            cancel_requested=False,
            cancelled_by="",
            finished_at=None,
            sent=counts["sent"],
            confirmed=counts["confirmed"],
            failed=counts["failed"],
        )
        AuditEntry.record(
            request,
            "replay_resume",
            AuditEntry.OK,
            broker=job.broker or "default",
            target=f"replay #{job.id}",
            detail=f"{left:,} left to send; in-flight item: {in_flight}",
        )
        transaction.on_commit(lambda: enqueue(job.id))
    job.refresh_from_db()
    return left


# Fields a job keeps when its dry run is sent for real.
_COPIED = (
    "kind", "description", "source", "broker", "vhost", "exchange", "routing_key",
    "redrive_how", "body", "headers", "headers_replace", "keep_message_id", "keep_timestamp",
    "allow_truncated", "rate_per_s", "keep_timing", "speed", "await_reply", "reply_timeout_s",
    "ignore_fields", "total",
)  # fmt: skip
_ITEM_COPIED = (
    "position", "message_id", "flow_id", "captured_at", "peeked", "peeked_body",
    "original_reply_id", "original_latency_ms",
)  # fmt: skip


def send_for_real(request, dry, confirm_count=None):
    """A new job sending exactly what dry run `dry` showed (same messages, same options)."""
    target = f"replay #{dry.id}"
    if not dry.dry_run or not dry.is_finished:
        _refuse(request, f"Replay #{dry.id} is not a finished dry run.", 409, target=target)
    threshold = settings.WARREN_REPLAY_CONFIRM_ABOVE
    if dry.total > threshold and confirm_count != dry.total:
        _refuse(
            request,
            f"This sends {dry.total:,} messages, more than {threshold:,}: type {dry.total} to "
            "confirm.",
            409,
            target=target,
            total=dry.total,
            confirm_above=threshold,
        )
    with transaction.atomic():
        job = ReplayJob.objects.create(
            created_by=request.user if request.user.is_authenticated else None,
            username=request.user.get_username(),
            dry_run=False,
            **{name: getattr(dry, name) for name in _COPIED},
        )
        job.source = {**job.source, "from_dry_run": dry.id}
        job.save(update_fields=["source"])
        rows = dry.items.order_by("position").values(*_ITEM_COPIED)
        batch = []
        for row in rows.iterator(chunk_size=ITEM_CHUNK):
            batch.append(ReplayItem(job=job, **row))
            if len(batch) == ITEM_CHUNK:
                ReplayItem.objects.bulk_create(batch)
                batch = []
        if batch:
            ReplayItem.objects.bulk_create(batch)
        AuditEntry.record(
            request,
            "replay",
            AuditEntry.OK,
            broker=job.broker or "default",
            vhost=job.vhost or "",
            target=f"{job.description} → {target_words(job)}"[:1000],
            detail=f"job #{job.id}, as dry run #{dry.id} showed: {job_summary(job)}",
        )
        transaction.on_commit(lambda: enqueue(job.id))
    return job
