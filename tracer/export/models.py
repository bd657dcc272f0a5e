"""What the export package stores: positions of its readers of settled flows,
running totals for /metrics, tap counters kept past retention, and imports.

Every figure /metrics shows is read from here or from the tracer's own tables,
so several Warren processes, and a restart, show the same counters.
"""

from django.conf import settings
from django.db import models


class FlowFeed(models.Model):
    """How far one reader of settled flows has got, in (started_at, id) order.

    `metrics` folds flows into RpcTotals, `otlp` exports them as spans; each
    position is written in the same transaction as what it did, so which flows
    were counted (or exported) survives a restart exactly.
    """

    name = models.CharField(max_length=40, unique=True)
    after_started_at = models.DateTimeField(null=True, blank=True)
    after_id = models.BigIntegerField(default=0)
    done = models.BigIntegerField(default=0)  # flows counted or exported
    lost = models.BigIntegerField(default=0)  # spans a receiver did not take
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.done} done, {self.lost} lost"


class RpcTotals(models.Model):
    """Counters of one (vhost, service) since Warren first saw it; never pruned.

    `latency` holds one histogram per kind (end_to_end, queue_wait, service):
    {"counts": [calls per bucket of metrics.LATENCY_BUCKETS_S, +Inf last],
    "sum_s": total seconds}.
    """

    vhost = models.TextField()
    service = models.TextField()
    calls = models.BigIntegerField(default=0)
    timeouts = models.BigIntegerField(default=0)
    late_replies = models.BigIntegerField(default=0)
    latency = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["vhost", "service"], name="export_rpc_totals_unique")
        ]

    def __str__(self) -> str:
        return f"{self.service} ({self.vhost}): {self.calls} calls"


class TapSessionTotals(models.Model):
    """A tap session's counters as last seen, kept after retention prunes the
    session itself, so the tap's counters on /metrics never go down."""

    session_id = models.BigIntegerField(unique=True)
    received = models.BigIntegerField(default=0)
    stored = models.BigIntegerField(default=0)
    dropped = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(default=0)
    backlog = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"tap session {self.session_id}: {self.received} received"


class Import(models.Model):
    """One capture file imported (POST /api/imports or the Imports page)."""

    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(max_length=150, blank=True)
    filename = models.TextField(blank=True, default="")
    messages = models.IntegerField(default=0)
    vhosts = models.JSONField(default=list)
    first_captured_at = models.DateTimeField(null=True, blank=True)
    last_captured_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"import #{self.id}: {self.messages} messages"


class ImportedMessage(models.Model):
    """A message an import stored: its new id, and its id in the file."""

    capture = models.ForeignKey(Import, on_delete=models.CASCADE, related_name="items")
    message_id = models.BigIntegerField()
    original_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["message_id"], name="export_imported_message")]

    def __str__(self) -> str:
        return f"message {self.message_id} (was {self.original_id})"
