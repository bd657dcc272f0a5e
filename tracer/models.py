"""What the tracer stores: captured events, RPC flows, tap sessions and gaps,
and per-minute latency roll-ups for statistics.

The tap writes messages and flows with plain SQL in batches (tracer/store/storage.py);
these models describe the tables and serve the pages and the API. Identifiers
between tables are plain integers, not foreign keys: a flow's id is the id of
its request message (an orphan's, of its reply), assigned before either row is
written, so a batch needs no second pass to link them.
"""

from django.db import models
from django.db.models import Q


class Message(models.Model):
    PUBLISH = "publish"
    DELIVER = "deliver"

    id = models.BigAutoField(primary_key=True)
    event = models.CharField(max_length=7)
    captured_at = models.DateTimeField()
    vhost = models.TextField()
    node = models.TextField(blank=True, default="")
    exchange = models.TextField(blank=True, default="")
    routing_key = models.TextField(blank=True, default="")  # the first of routing_keys
    routing_keys = models.JSONField(default=list)
    routed_queues = models.JSONField(null=True, blank=True)  # publish only
    queue = models.TextField(blank=True, default="")  # deliver only
    properties = models.JSONField(default=dict)
    correlation_id = models.TextField(blank=True, default="")
    reply_to = models.TextField(blank=True, default="")
    # reply_to, else the routing key (publish) or queue (deliver): the reply queue
    # the event may concern, so pairing finds a group's events by index.
    reply_key = models.TextField(blank=True, default="")
    body = models.BinaryField(default=bytes)  # cut at WARREN_BODY_LIMIT
    body_size = models.BigIntegerField(default=0)
    body_truncated = models.BooleanField(default=False)
    redelivered = models.BooleanField(default=False)
    user = models.TextField(blank=True, default="")
    connection = models.TextField(blank=True, default="")
    channel = models.IntegerField(null=True, blank=True)
    flow_id = models.BigIntegerField(null=True, blank=True)
    backlog = models.BooleanField(default=False)
    replay_of = models.BigIntegerField(null=True, blank=True)
    # Hash of properties and body: ties a delivery to the publish it delivers.
    fingerprint = models.BigIntegerField(default=0)
    # Hash of the whole trace message: recognises the same trace event delivered
    # to the tap again after a crash between commit and ack.
    dedupe_key = models.BigIntegerField(default=0)
    # How many times that happened: the copies are counted here, not stored.
    duplicates = models.IntegerField(default=0)
    # How late capture's stamp may be (µs): 0 when the frame's bytes were read as
    # they arrived; else how long bytes had been waiting in the socket when read.
    stamp_error_us = models.IntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["captured_at"], name="tracer_msg_time"),
            models.Index(fields=["vhost", "captured_at"], name="tracer_msg_vhost_time"),
            models.Index(
                fields=["correlation_id", "vhost", "reply_key", "captured_at"],
                name="tracer_msg_pairing",
            ),
            models.Index(
                fields=["flow_id"], name="tracer_msg_flow", condition=Q(flow_id__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.id}"


class Flow(models.Model):
    PENDING = "pending"
    COMPLETE = "complete"
    TIMEOUT = "timeout"
    ORPHAN = "orphan"

    id = models.BigIntegerField(primary_key=True)  # = request_id, or reply_id for an orphan
    vhost = models.TextField()
    service = models.TextField(blank=True, default="")
    correlation_id = models.TextField(null=True, blank=True)
    reply_to = models.TextField(blank=True, default="")
    pairing = models.CharField(max_length=14)
    status = models.CharField(max_length=8)
    started_at = models.DateTimeField()  # requested_at, or replied_at for an orphan
    requested_at = models.DateTimeField(null=True, blank=True)
    request_delivered_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    reply_delivered_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    queue_wait_ms = models.FloatField(null=True, blank=True)
    service_ms = models.FloatField(null=True, blank=True)
    end_to_end_ms = models.FloatField(null=True, blank=True)
    request_id = models.BigIntegerField(null=True, blank=True)
    reply_id = models.BigIntegerField(null=True, blank=True)
    replies = models.IntegerField(default=0)
    redeliveries = models.IntegerField(default=0)
    late = models.BooleanField(default=False)
    backlog = models.BooleanField(default=False)
    # The tap's resolution for this flow's figures (ms): a figure smaller than it
    # is shown as "< resolution"; measured_behind: one of its events was read
    # while capture was behind, so its figures are approximate.
    resolution_ms = models.FloatField(null=True, blank=True)
    measured_behind = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["started_at"], name="tracer_flow_time"),
            models.Index(fields=["vhost", "started_at"], name="tracer_flow_vhost_time"),
            models.Index(fields=["service", "started_at"], name="tracer_flow_service_time"),
            # With the time and id the lookup by correlation id also reads in the
            # pages' order (newest first): one index range, whatever the planner
            # guesses about how many flows share the id.
            models.Index(
                fields=["correlation_id", "started_at", "id"], name="tracer_flow_corr_time"
            ),
            models.Index(
                fields=["requested_at"],
                name="tracer_flow_pending",
                condition=Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"flow #{self.id} {self.service} {self.status}"


class ReplyQueue(models.Model):
    """Queues known to receive replies (a request named them in reply_to).

    A reply there that matches no request is an orphan; a message there without
    a correlation id is paired by reply_to. Direct reply-to needs no row.
    """

    vhost = models.TextField()
    name = models.TextField()
    last_request_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["vhost", "name"], name="tracer_reply_queue_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.vhost})"


class ServiceMinute(models.Model):
    """Per service and minute of request: calls, timeouts, latency sum and max."""

    vhost = models.TextField()
    service = models.TextField()
    minute = models.DateTimeField()
    calls = models.BigIntegerField(default=0)
    timeouts = models.BigIntegerField(default=0)  # no reply in time, late ones included
    late = models.BigIntegerField(default=0)  # replies that came after the RPC timeout
    answered = models.BigIntegerField(default=0)  # replies in time: the latency figures
    latency_sum_ms = models.FloatField(default=0)
    latency_max_ms = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["vhost", "service", "minute"], name="tracer_service_minute_unique"
            )
        ]
        indexes = [models.Index(fields=["minute"], name="tracer_service_minute_time")]

    def __str__(self) -> str:
        return f"{self.service} at {self.minute:%Y-%m-%d %H:%M}: {self.calls} calls"


class LatencyBucket(models.Model):
    """Latency histogram per service and minute on a log scale (see tracer/store/stats.py)."""

    vhost = models.TextField()
    service = models.TextField()
    minute = models.DateTimeField()
    bucket = models.IntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service", "minute", "vhost", "bucket"],
                name="tracer_latency_bucket_unique",
            )
        ]
        indexes = [models.Index(fields=["minute"], name="tracer_latency_bucket_time")]

    def __str__(self) -> str:
        return f"{self.service} at {self.minute:%Y-%m-%d %H:%M}: bucket {self.bucket}"


class TapSession(models.Model):
    """One run of a tap process; its counters are what /api/tap/status reports."""

    pid = models.IntegerField()
    host = models.TextField(blank=True, default="")
    vhosts = models.JSONField(default=list)
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.TextField(blank=True, default="")
    received = models.BigIntegerField(default=0)
    stored = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(default=0)
    backlog = models.BigIntegerField(default=0)
    dropped = models.BigIntegerField(default=0)
    queue_depth = models.BigIntegerField(default=0)
    lag_ms = models.FloatField(default=0)
    last_event_at = models.DateTimeField(null=True, blank=True)
    connected = models.JSONField(default=dict)  # vhost -> true/false
    problems = models.JSONField(default=list)  # what the tap cannot do right now, in words
    # Unused: the id ranges of batches stored but not acked, from when storage
    # dropped the broker's redeliveries; capture drops them now, before the spool.
    # Always empty; kept until a migration drops the column.
    unacked_ranges = models.JSONField(default=list)
    # How far indexing is behind capture: the age of the oldest frame waiting in
    # the spool (s), and what the spool holds.
    index_lag_s = models.FloatField(default=0)
    spool_bytes = models.BigIntegerField(default=0)
    spool_frames = models.BigIntegerField(default=0)
    # Indexing paused now because the machine is busy (tracer/tap/give_way.py),
    # and for how long in all in this session (s).
    index_paused = models.BooleanField(default=False)
    index_paused_s = models.FloatField(default=0)

    class Meta:
        indexes = [models.Index(fields=["heartbeat_at"], name="tracer_tap_heartbeat")]

    def __str__(self) -> str:
        return f"tap {self.pid}@{self.host} since {self.started_at:%Y-%m-%d %H:%M:%S}"


class TapGap(models.Model):
    """A stretch of time in which events may be missing, and how many were dropped."""

    vhost = models.TextField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    dropped = models.BigIntegerField(default=0)
    reason = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["started_at"], name="tracer_gap_time")]

    def __str__(self) -> str:
        end = self.ended_at.strftime("%H:%M:%S") if self.ended_at else "now"
        return (
            f"{self.reason}: {self.started_at:%H:%M:%S}–{end}, "
            f"{self.dropped} dropped ({self.vhost})"
        )


class SpoolPosition(models.Model):
    """How far indexing has read one capture spool (its last stored sequence
    number), written in the same transaction as the rows: exactly once."""

    spool = models.TextField(unique=True)  # "<host>:<vhost>" (see tracer/tap/spooling.py)
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.spool} at {self.position}"


class TracedVhost(models.Model):
    """The operator's choice of one vhost to trace or not, made in the console.

    The tap reads the traced ones every tick (tracer/store/traced.py). The name
    `*` stands for every vhost, new ones included. A row switched off is kept,
    so that an empty table alone means "never chosen" and is seeded from
    WARREN_TRACE_VHOSTS.
    """

    vhost = models.TextField(unique=True)
    traced = models.BooleanField(default=True)
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.TextField(blank=True, default="")  # "" for the seed

    def __str__(self) -> str:
        return f"{self.vhost}: {'traced' if self.traced else 'not traced'}"
