"""Re-deriving stored flows' service names under the service rules in force
(`manage.py rename_services`), with their roll-ups kept equal to a recount.

A flow's service comes from its request message (tracer.store.services). When
WARREN_SERVICE_RULES changes, flows stored before keep the names the old rules
gave; this walks them in id order, a chunk a transaction, and moves each
renamed flow's contribution from the old service's ServiceMinute and
LatencyBucket rows to the new one's. A chunk takes the same per-reply-queue
locks as the tap (tracer.store.groups) so a tap writing at the same time
never sees half of it.
"""

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Max

from tracer.models import Flow, LatencyBucket, Message, ServiceMinute
from tracer.store import services
from tracer.store.groups import lock_reply_queues
from tracer.store.rollup import MinuteKey, RollUp, existing_flows
from tracer.store.sql import chunks, table_of
from tracer.times import from_us

CHUNK = 2000


@dataclass
class Progress:
    """How far a renaming has come: flows read, flows renamed, and which names moved."""

    total: int
    read: int = 0
    renamed: int = 0
    moves: Counter[tuple[str, str]] = field(default_factory=Counter)  # (old, new) -> flows


def _flow_ids(vhost: str | None) -> Iterator[list[int]]:
    """Ids of flows with a request, in order, a chunk at a time (keyset: no offsets)."""
    flows = Flow.objects.filter(request_id__isnull=False)
    if vhost is not None:
        flows = flows.filter(vhost=vhost)
    after = -1
    while True:
        ids = list(flows.filter(id__gt=after).order_by("id").values_list("id", flat=True)[:CHUNK])
        if not ids:
            return
        yield ids
        after = ids[-1]


def _requests(ids: list[int]) -> dict[int, tuple[str, str, object]]:
    rows = Message.objects.filter(id__in=ids).values_list(
        "id", "exchange", "routing_key", "properties"
    )
    return {message_id: (exchange, key, props) for message_id, exchange, key, props in rows}


def _refresh_maxima(minutes: set[MinuteKey]) -> None:
    """A ServiceMinute's latency maximum from its flows again: a renamed flow may have
    held the maximum of the minute it left (the upsert only ever raises it)."""
    for vhost, service, minute_us in minutes:
        minute = from_us(minute_us)
        highest = (
            Flow.objects.filter(
                vhost=vhost,
                service=service,
                requested_at__gte=minute,
                requested_at__lt=minute + timedelta(minutes=1),
                backlog=False,
                late=False,
                latency_ms__isnull=False,
            )
            .exclude(status="orphan")
            .aggregate(highest=Max("latency_ms"))["highest"]
        )
        ServiceMinute.objects.filter(vhost=vhost, service=service, minute=minute).update(
            latency_max_ms=highest or 0.0
        )


def _drop_empty(minutes: set[MinuteKey]) -> None:
    """Roll-up rows a renaming emptied: a service no flow is named by any more."""
    for vhost, service, minute_us in minutes:
        minute = from_us(minute_us)
        ServiceMinute.objects.filter(vhost=vhost, service=service, minute=minute, calls=0).delete()
        LatencyBucket.objects.filter(vhost=vhost, service=service, minute=minute, count=0).delete()


def _rename_chunk(
    cursor: CursorWrapper, ids: list[int], rules: tuple[str, ...], progress: Progress, apply: bool
) -> None:
    queues = set(Flow.objects.filter(id__in=ids).values_list("vhost", "reply_to"))
    lock_reply_queues(cursor, queues)
    # Read again under the locks: the tap may have rewritten some since they were listed.
    flows = existing_flows(cursor, ids)
    requests = _requests([row["request_id"] for row in flows.values()])
    rollup = RollUp()
    renamed: list[tuple[str, int]] = []
    old_names: set[str] = set()
    for flow_id, row in flows.items():
        request = requests.get(row["request_id"])
        if request is None:  # its request was pruned: nothing to derive from
            continue
        exchange, routing_key, properties = request
        service = services.service_of(exchange, routing_key, properties, rules)
        if service == row["service"]:
            continue
        progress.moves[(row["service"], service)] += 1
        renamed.append((service, flow_id))
        old_names.add(row["service"])
        rollup.change(row, {**row, "service": service})
    progress.read += len(ids)
    progress.renamed += len(renamed)
    if not apply or not renamed:
        return
    cursor.executemany(
        f"UPDATE {table_of(Flow)} SET service = %s WHERE id = %s",  # noqa: S608
        renamed,
    )
    rollup.write(cursor)
    left = {key for key in rollup.minutes if key[1] in old_names}
    _refresh_maxima(left)
    _drop_empty(left)


def rename_services(
    vhost: str | None = None,
    *,
    apply: bool = True,
    report: Callable[[Progress], None] | None = None,
) -> Progress:
    """Give every stored flow (of `vhost`, or all) the service the rules in force name.

    With apply=False nothing is written: the Progress says what would move.
    `report(progress)` is called after each chunk.
    """
    rules = services.configured_rules()
    flows = Flow.objects.filter(request_id__isnull=False)
    progress = Progress(total=(flows.filter(vhost=vhost) if vhost is not None else flows).count())
    for ids in _flow_ids(vhost):
        for part in chunks(ids):
            with transaction.atomic(), connection.cursor() as cursor:
                _rename_chunk(cursor, part, rules, progress, apply)
        if report is not None:
            report(progress)
    return progress
