"""Running a replay job: plain functions the Celery task (and the tests) call.

One worker runs a job from start to end over one confirmed-publish session
per vhost (rabbit.replaying.ReplaySession). For each item, in order:

    wait for its time (rate limit, original timing) — checking cancel meanwhile
    mark it `sending` (commit) → publish, mandatory, wait for the confirm
    → RPC: wait for the reply → mark it `confirmed`/`failed` (commit)

so the job's counts are exact at every moment, and a worker killed anywhere
leaves at most one item whose fate is unknown. The job row carries a
heartbeat; a job whose heartbeat stops is marked interrupted by whoever looks
at it next (replay.workers.notice_interrupted), and can be resumed (replay.jobs.resume_job).
"""

import logging
import time
import uuid
from types import SimpleNamespace

from django.db import connection
from django.db.models import F
from django.utils import timezone

from console.brokers import get_broker
from console.models import AuditEntry
from rabbit import amqp, replaying
from rabbit.brokers import default_broker
from replay import rpc
from replay.models import ReplayItem, ReplayJob
from replay.outgoing import Options, Refused, Source, prepare
from replay.workers import MAX_JOB_ERRORS, notice_interrupted, worker_name
from tracer.models import Message

log = logging.getLogger("replay")

HEARTBEAT_S = 1.0
CANCEL_CHECK_S = 0.1
MAX_LAG_S = 1.0  # behind schedule by more than this: carry on at the rate, no burst
CHUNK = 200


class _Stop(Exception):  # noqa: N818 - control flow: cancel seen between publishes
    pass


def claim(job_id):
    """Takes a queued job for this worker, or None when it is not queued any more."""
    now = timezone.now()
    taken = ReplayJob.objects.filter(id=job_id, status=ReplayJob.QUEUED).update(
        status=ReplayJob.RUNNING,
        heartbeat_at=now,
        worker=worker_name(),
        runs=F("runs") + 1,
    )
    if not taken:
        # A task delivered again after its worker died finds the job still
        # "running": say so, and leave the resume to an operator.
        notice_interrupted(ReplayJob.objects.filter(id=job_id))
        return None
    ReplayJob.objects.filter(id=job_id, started_at__isnull=True).update(started_at=now)
    return ReplayJob.objects.get(id=job_id)


def run_job(job_id):
    """Runs (or continues) job `job_id` to its end; returns the job, or None if not queued."""
    job = claim(job_id)
    if job is None:
        return None
    runner = _Runner(job)
    try:
        _quick_commits(True)
        runner.run()
    except _Stop:
        _finish(job, ReplayJob.CANCELLED)
    except amqp.AMQPError as error:
        reason = f"lost the broker: {type(error).__name__} {error}".strip()
        stopped = ReplayJob.INTERRUPTED if runner.published else ReplayJob.FAILED
        _finish(job, stopped, reason)
    except Exception as error:
        log.exception("replay job %s failed", job_id)
        _finish(job, ReplayJob.FAILED, f"{type(error).__name__}: {error}")
    else:
        _finish(job, ReplayJob.DONE)
    finally:
        runner.close()
        _quick_commits(False)
    job.refresh_from_db()
    return job


def _quick_commits(on):
    """PostgreSQL: do not wait for the disk on each item's commit while a job runs.

    Two commits per message would otherwise cap a replay near 300 msg/s. A
    worker that dies loses nothing (its commits reached the server); only a
    crash of the database server itself can lose the last fraction of a
    second of item records, which a resume would then send again.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF" if on else "RESET synchronous_commit")


def _add_error(job_id, words):
    job = ReplayJob.objects.get(id=job_id)
    job.errors = (job.errors + [words])[-MAX_JOB_ERRORS:]
    ReplayJob.objects.filter(id=job_id).update(errors=job.errors)


def _finish(job, status, reason=""):
    if reason:
        _add_error(job.id, reason)
    counts = ReplayJob.objects.get(id=job.id).counts_from_items()
    report = _report(job)
    ReplayJob.objects.filter(id=job.id).update(
        status=status,
        finished_at=timezone.now(),
        sent=counts["sent"],
        confirmed=counts["confirmed"],
        failed=counts["failed"],
        report=report,
    )
    job.refresh_from_db()
    AuditEntry.record(
        SimpleNamespace(username=job.username),
        "replay_finished",
        AuditEntry.OK if status == ReplayJob.DONE else AuditEntry.FAILED,
        broker=job.broker or "default",
        vhost=job.vhost or "",
        target=f"replay #{job.id}: {job.description}"[:1000],
        detail=(
            f"{status}: {job.total:,} total, {job.sent:,} sent, {job.confirmed:,} confirmed, "
            f"{job.failed:,} failed"
            + (" (dry run)" if job.dry_run else "")
            + (f"; {reason}" if reason else "")
        ),
    )


def _report(job):
    counts = job.counts_from_items()
    report = {"in_flight": counts["in_flight"]}
    if job.started_at:
        report["seconds"] = round((timezone.now() - job.started_at).total_seconds(), 3)
    if job.await_reply:
        rows = job.items.values("reply_status", "changed", "latency_ms", "original_latency_ms")
        report["rpc"] = rpc.regression_report(list(rows))
    return report


class _Runner:
    """One run of one job: sessions, schedule, and the per-item steps."""

    def __init__(self, job):
        self.job = job
        self.options = Options.from_job(job)
        self.sessions = {}
        self.unusable = {}  # vhost -> why it cannot be opened
        self.published = 0
        self.next_at = None
        self.previous_captured = None
        self.last_beat = 0.0
        self.last_check = 0.0
        self.sent, self.confirmed, self.failed = job.sent, job.confirmed, job.failed
        broker = get_broker(job.broker) if job.broker else default_broker()
        if broker is None:
            raise ValueError(f"the broker '{job.broker}' no longer exists")
        self.amqp_url = broker.amqp_url() if job.broker else _default_amqp_url()

    # --- the loop ---------------------------------------------------------------

    def run(self):
        last_position = -1
        while True:
            pending = self.job.items.filter(state=ReplayItem.PENDING, position__gt=last_position)
            chunk = list(pending.order_by("position")[:CHUNK])
            if not chunk:
                return
            messages = Message.objects.in_bulk(
                [item.message_id for item in chunk if item.message_id is not None]
            )
            for item in chunk:
                self.one(item, messages)
                last_position = item.position

    def one(self, item, messages):
        if item.message_id is not None:
            message = messages.get(item.message_id)
            if message is None:
                self.fail(item, "the captured message is gone (pruned by retention)")
                return
            source = Source.from_message(message)
        else:
            source = Source.from_peeked(item.peeked or {}, item.peeked_body)
        rpc_call = self.job.await_reply and bool(source.reply_to)
        session = None
        if not self.job.dry_run:
            try:
                vhost = self._vhost_for(source)
                session = self.session(vhost)
            except Refused as refused:
                self.fail(item, str(refused))
                return
        # Its turn once the connection is open: opening one (the first message of
        # a vhost) must not eat into the gap before the next message.
        self.wait_turn(item)
        correlation_id = f"warren-replay-{self.job.id}-{item.position}-{uuid.uuid4().hex[:8]}"
        try:
            outgoing = prepare(
                source,
                self.options,
                username=session.username if session else _username(self.amqp_url),
                reply_to=(session.reply_queue() if session else "(Warren's reply queue)")
                if rpc_call
                else None,
                correlation_id=correlation_id if rpc_call else None,
            )
        except Refused as refused:
            self.fail(item, str(refused))
            return
        if self.job.dry_run:
            self.plan(item, outgoing, rpc_call)
            return
        self.mark_sending(item, outgoing)
        self.published += 1
        started = time.monotonic()
        outcome, reason = session.publish(
            outgoing.exchange, outgoing.routing_key, outgoing.body, outgoing.pika_properties()
        )
        if outcome != amqp.CONFIRMED:
            self.fail(item, f"{outcome}: {reason}")
            return
        reply = None
        if rpc_call:
            reply = self.await_reply(session, correlation_id)
            session.forget_replies()  # a late answer to an earlier call is nobody's now
        self.confirm(item, rpc_call, reply, started, correlation_id)

    def await_reply(self, session, correlation_id):
        """The reply, or None after the job's timeout; the heartbeat goes on meanwhile."""
        deadline = time.monotonic() + self.job.reply_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            reply = session.wait_reply(correlation_id, max(0.0, min(remaining, HEARTBEAT_S)))
            if reply is not None or remaining <= HEARTBEAT_S:
                return reply
            self.flush_counts(beat=True)

    def _vhost_for(self, source):
        if self.options.vhost is not None:
            return self.options.vhost
        return source.vhost

    # --- sessions ---------------------------------------------------------------

    def session(self, vhost):
        if vhost in self.unusable:
            raise Refused(self.unusable[vhost])
        if vhost not in self.sessions:
            try:
                self.sessions[vhost] = replaying.open_replay_session(
                    self.amqp_url, vhost, name=f"warren replay #{self.job.id}"
                )
            except amqp.AMQPConnectionError as error:
                words = _connection_problem(error, vhost)
                if words is None:
                    raise
                self.unusable[vhost] = words
                raise Refused(words) from None
        return self.sessions[vhost]

    def close(self):
        for session in self.sessions.values():
            session.close()

    # --- timing, heartbeat, cancel ------------------------------------------------

    def wait_turn(self, item):
        now = time.monotonic()
        step = 1.0 / self.job.rate_per_s if self.job.rate_per_s else 0.0
        if self.job.keep_timing and item.captured_at and self.previous_captured:
            gap = (item.captured_at - self.previous_captured).total_seconds() / self.job.speed
            step = max(step, gap)
        if item.captured_at:
            self.previous_captured = item.captured_at
        if self.next_at is None:
            self.next_at = now
        else:
            self.next_at = max(self.next_at + step, now - MAX_LAG_S)
        while True:
            self.tick()
            remaining = self.next_at - time.monotonic()
            if remaining <= 0:
                return
            self.pause(min(remaining, CANCEL_CHECK_S))

    def pause(self, seconds):
        if not self.sessions:
            time.sleep(seconds)
            return
        sessions = list(self.sessions.values())
        for session in sessions[1:]:
            session.sleep(0)
        sessions[0].sleep(seconds)

    def tick(self):
        """Every CANCEL_CHECK_S: the counts onto the job row, and the cancel flag read."""
        now = time.monotonic()
        if now - self.last_check < CANCEL_CHECK_S:
            return
        self.last_check = now
        self.flush_counts(beat=now - self.last_beat >= HEARTBEAT_S)
        if ReplayJob.objects.filter(id=self.job.id, cancel_requested=True).exists():
            raise _Stop()

    def flush_counts(self, beat=True):
        """The job row's counts, as the items say (the runner counts what it records).

        Written every CANCEL_CHECK_S rather than with each item, so that each
        item costs one small UPDATE: the job row trails its items by at most
        that long, and is recounted from them when the job stops in any way.
        """
        fields = {"sent": self.sent, "confirmed": self.confirmed, "failed": self.failed}
        if beat:
            fields["heartbeat_at"] = timezone.now()
            self.last_beat = time.monotonic()
        ReplayJob.objects.filter(id=self.job.id).update(**fields)

    # --- records ----------------------------------------------------------------

    def _where(self, item, outgoing):
        item.vhost = outgoing.vhost
        item.exchange = outgoing.exchange
        item.routing_key = outgoing.routing_key
        item.properties = outgoing.properties
        item.body_size = len(outgoing.body)
        if outgoing.notes:
            item.error = "; ".join(outgoing.notes)

    def plan(self, item, outgoing, rpc_call):
        self._where(item, outgoing)
        item.state = ReplayItem.PLANNED
        if self.job.await_reply and not rpc_call:
            item.reply_status = ReplayItem.NOT_A_REQUEST
        item.save(
            update_fields=[
                "vhost",
                "exchange",
                "routing_key",
                "properties",
                "body_size",
                "error",
                "state",
                "reply_status",
            ]
        )

    def mark_sending(self, item, outgoing):
        self._where(item, outgoing)
        item.state = ReplayItem.SENDING
        item.attempts += 1
        item.sent_at = timezone.now()
        first_time = not item.published
        item.published = True
        # Committed before the publish: a worker dying from here on leaves this
        # item `sending`, the one whose fate is unknown.
        item.save(
            update_fields=[
                "vhost",
                "exchange",
                "routing_key",
                "properties",
                "body_size",
                "error",
                "state",
                "attempts",
                "sent_at",
                "published",
            ]
        )
        if first_time:
            self.sent += 1

    def fail(self, item, reason):
        item.state = ReplayItem.FAILED
        item.error = reason[:2000]
        item.save(update_fields=["state", "error"])
        self.failed += 1

    def confirm(self, item, rpc_call, reply, started, correlation_id):
        item.state = ReplayItem.CONFIRMED
        item.confirmed_at = timezone.now()
        fields = ["state", "confirmed_at"]
        if self.job.await_reply:
            fields += ["reply_status", "correlation_id"]
            if not rpc_call:
                item.reply_status = ReplayItem.NOT_A_REQUEST
            elif reply is None:
                item.reply_status = ReplayItem.TIMEOUT
                item.correlation_id = correlation_id
            else:
                item.reply_status = ReplayItem.REPLIED
                item.correlation_id = correlation_id
                item.reply_body = reply.body
                item.reply_properties = _reply_properties(reply.properties)
                item.latency_ms = round((reply.received_at - started) * 1000.0, 3)
                item.changed = rpc.changed(
                    _original_reply_body(item), reply.body, self.job.ignore_fields
                )
                fields += ["reply_body", "reply_properties", "latency_ms", "changed"]
        item.save(update_fields=fields)
        self.confirmed += 1


def _original_reply_body(item):
    if not item.original_reply_id:
        return None
    body = Message.objects.filter(id=item.original_reply_id).values_list("body", flat=True).first()
    return None if body is None else bytes(body)


def _reply_properties(props):
    from tracer.tap.decoding import json_safe

    fields = {
        name: getattr(props, name, None)
        for name in amqp.BASIC_PROPERTY_NAMES
        if getattr(props, name, None) is not None
    }
    return json_safe(fields)


def _default_amqp_url():
    from rabbit.brokers import default_amqp_url

    return default_amqp_url()


def _username(url):
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).username or "")


def _connection_problem(error, vhost):
    """Words for a connection refused over this vhost, or None when the broker is down."""
    text = f"{type(error).__name__} {error}"
    if "AccessDenied" in text or "NOT_ALLOWED" in text or "access to vhost" in text.lower():
        return f"cannot open vhost '{vhost}' (it does not exist, or Warren's user may not use it)"
    if "Authentication" in text:
        return f"the broker refused Warren's credentials for vhost '{vhost}'"
    return None
