"""Replay jobs and their items.

A job is what an operator asked for (which messages, where to, how fast, what
to change); its items are the messages, one row each, in sending order. An
item is marked `sending` before its publish and `confirmed` (or `failed`) once
the broker answered, each in its own transaction, so that after a worker dies
the job knows exactly what was confirmed, and a resume never sends a
confirmed message again. At most one item per job can be left `sending`: the
one whose fate is unknown (it may have reached the broker).
"""

from django.conf import settings
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone


class ReplayJob(models.Model):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    STATES = [
        (QUEUED, "queued"),
        (RUNNING, "running"),
        (DONE, "done"),
        (FAILED, "failed"),
        (CANCELLED, "cancelled"),
        (INTERRUPTED, "interrupted"),
    ]
    ACTIVE = (QUEUED, RUNNING)
    RESUMABLE = (FAILED, CANCELLED, INTERRUPTED)

    PUBLISH = "publish"
    RPC = "rpc"
    REDRIVE = "redrive"
    KINDS = [(PUBLISH, "replay"), (RPC, "RPC replay"), (REDRIVE, "dead-letter redrive")]

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(max_length=150, blank=True)
    kind = models.CharField(max_length=8, choices=KINDS, default=PUBLISH)
    status = models.CharField(max_length=12, choices=STATES, default=QUEUED, db_index=True)
    description = models.TextField(blank=True)  # what was chosen, in words
    source = models.JSONField(default=dict)  # how it was chosen (ids, filter, dead-letter queue)

    # Where to: empty/None fields mean "as the original".
    broker = models.CharField(max_length=60, blank=True)  # slug; "" = the default broker
    vhost = models.TextField(null=True, blank=True)
    exchange = models.TextField(null=True, blank=True)
    routing_key = models.TextField(null=True, blank=True)
    redrive_how = models.CharField(max_length=5, blank=True)  # "queue" | "route" (x-death)

    # What to change.
    body = models.BinaryField(null=True, blank=True)  # replaces every body when set
    headers = models.JSONField(null=True, blank=True)  # merged into (or replacing) the headers
    headers_replace = models.BooleanField(default=False)
    keep_message_id = models.BooleanField(default=True)
    keep_timestamp = models.BooleanField(default=True)
    allow_truncated = models.BooleanField(default=False)

    # How.
    rate_per_s = models.FloatField(null=True, blank=True)
    keep_timing = models.BooleanField(default=False)
    speed = models.FloatField(default=1.0)
    await_reply = models.BooleanField(default=False)
    reply_timeout_s = models.FloatField(default=10.0)
    ignore_fields = models.JSONField(default=list)  # JSON fields left out of reply comparison
    dry_run = models.BooleanField(default=False)

    # Progress, exact: updated in the same transaction as each item.
    total = models.IntegerField(default=0)
    sent = models.IntegerField(default=0)
    confirmed = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    errors = models.JSONField(default=list)  # job-level problems, in words
    cancel_requested = models.BooleanField(default=False)
    cancelled_by = models.CharField(max_length=150, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=300, blank=True)  # host:pid of the worker running it
    runs = models.IntegerField(default=0)  # 1 + resumes
    report = models.JSONField(default=dict)  # final figures, RPC regression report

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"replay #{self.id} ({self.status})"

    @property
    def is_active(self):
        return self.status in self.ACTIVE

    @property
    def is_finished(self):
        return not self.is_active

    @property
    def is_resumable(self):
        return self.status in self.RESUMABLE and self.remaining > 0

    @property
    def remaining(self):
        return max(0, self.total - self.confirmed - self.failed)

    @property
    def done_count(self):
        return self.confirmed + self.failed

    @property
    def api_status(self):
        """The four states of the API contract: a stopped job did not do all it was asked."""
        if self.status in (self.CANCELLED, self.INTERRUPTED):
            return self.FAILED
        return self.status

    @property
    def target_is_original(self):
        return (
            not self.broker
            and self.vhost is None
            and self.exchange is None
            and (self.routing_key is None)
        )

    def counts_from_items(self):
        """sent, confirmed, failed and in-flight, counted from the items themselves."""
        figures = self.items.aggregate(
            sent=Count("id", filter=Q(published=True)),
            confirmed=Count("id", filter=Q(state=ReplayItem.CONFIRMED)),
            failed=Count("id", filter=Q(state=ReplayItem.FAILED)),
            in_flight=Count("id", filter=Q(state=ReplayItem.SENDING)),
        )
        return figures


class ReplayItem(models.Model):
    PENDING = "pending"
    SENDING = "sending"  # published, or about to be: fate unknown until confirmed
    CONFIRMED = "confirmed"
    FAILED = "failed"
    PLANNED = "planned"  # a dry run's item: what would be sent
    STATES = [
        (PENDING, "pending"),
        (SENDING, "sending"),
        (CONFIRMED, "confirmed"),
        (FAILED, "failed"),
        (PLANNED, "planned"),
    ]

    REPLIED = "replied"
    TIMEOUT = "timeout"
    NOT_A_REQUEST = "no_reply_to"

    job = models.ForeignKey(ReplayJob, related_name="items", on_delete=models.CASCADE)
    position = models.IntegerField()  # sending order within the job
    state = models.CharField(max_length=9, choices=STATES, default=PENDING)
    published = models.BooleanField(default=False)
    attempts = models.IntegerField(default=0)

    # Where it comes from: a captured message, or a copy of a peeked one.
    message_id = models.BigIntegerField(null=True, blank=True)
    flow_id = models.BigIntegerField(null=True, blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)  # for keeping the original timing
    peeked = models.JSONField(null=True, blank=True)  # vhost, exchange, routing_key, properties
    peeked_body = models.BinaryField(null=True, blank=True)

    # What was (or, in a dry run, would be) sent.
    vhost = models.TextField(blank=True)
    exchange = models.TextField(blank=True)
    routing_key = models.TextField(blank=True)
    properties = models.JSONField(null=True, blank=True)
    body_size = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    # RPC: the reply now, beside the captured one.
    original_reply_id = models.BigIntegerField(null=True, blank=True)
    original_latency_ms = models.FloatField(null=True, blank=True)
    correlation_id = models.TextField(blank=True)
    reply_status = models.CharField(max_length=11, blank=True)
    reply_body = models.BinaryField(null=True, blank=True)
    reply_properties = models.JSONField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    changed = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["job", "position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="replay_item_position")
        ]
        indexes = [models.Index(fields=["job", "state", "position"], name="replay_item_state")]

    def __str__(self):
        return f"replay #{self.job_id} item {self.position} ({self.state})"
