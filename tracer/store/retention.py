"""Pruning what is older than WARREN_RETENTION, in chunks.

Each chunk is its own short transaction, so a tap writing at the same time
waits at most for one chunk (SQLite has one writer at a time).
"""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tracer.models import (
    Flow,
    LatencyBucket,
    Message,
    ReplyQueue,
    ServiceMinute,
    TapGap,
    TapSession,
)

log = logging.getLogger("tracer.retention")

CHUNK = 5000


def _prune(queryset, order_field, chunk):
    removed = 0
    while True:
        ids = list(queryset.order_by(order_field).values_list("id", flat=True)[:chunk])
        if not ids:
            return removed
        with transaction.atomic():
            queryset.model.objects.filter(id__in=ids).delete()
        removed += len(ids)


def prune(retention=None, now=None, chunk=CHUNK):
    """Delete events, flows, roll-ups and tap history older than the retention."""
    retention = settings.WARREN_RETENTION if retention is None else retention
    cutoff = (now or timezone.now()) - retention
    removed = {
        "messages": _prune(Message.objects.filter(captured_at__lt=cutoff), "captured_at", chunk),
        "flows": _prune(Flow.objects.filter(started_at__lt=cutoff), "started_at", chunk),
        "service_minutes": _prune(ServiceMinute.objects.filter(minute__lt=cutoff), "minute", chunk),
        "latency_buckets": _prune(LatencyBucket.objects.filter(minute__lt=cutoff), "minute", chunk),
        "gaps": _prune(TapGap.objects.filter(started_at__lt=cutoff), "started_at", chunk),
        "tap_sessions": _prune(
            TapSession.objects.filter(heartbeat_at__lt=cutoff), "heartbeat_at", chunk
        ),
        "reply_queues": _prune(
            ReplyQueue.objects.filter(last_request_at__lt=cutoff), "last_request_at", chunk
        ),
    }
    if any(removed.values()):
        log.info("pruned what is older than %s: %s", cutoff.isoformat(), removed)
    return removed
