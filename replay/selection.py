"""Which messages a replay sends: by id, by flow, by a Messages filter, or from a dead-letter queue.

A selection is resolved to a list of lightweight references (ids, times,
flags) in sending order — the oldest first — without loading bodies, so that
"everything matching this filter" can be counted and shown before anything is
sent. The filter takes the Messages search parameters of the JSON API
(docs/architecture.md, JSON API).
"""

import base64
from collections import namedtuple
from dataclasses import dataclass, field

from django.conf import settings

from tracer.masking import mask_body, masked_names
from tracer.models import Flow, Message
from tracer.web import queries

MAX_ITEMS = 100_000
MAX_ID = (1 << 63) - 1  # the largest id a database column holds
MAX_PEEK = 1000
FILTER_FIELDS = (
    "vhost",
    "exchange",
    "routing_key",
    "queue",
    "event",
    "correlation_id",
    "flow",
    "q",
    "since",
    "until",
)

Ref = namedtuple("Ref", "message_id captured_at flow_id body_truncated reply_to vhost")
_REF_FIELDS = ("id", "captured_at", "flow_id", "body_truncated", "reply_to", "vhost")


class SelectionError(ValueError):
    """The selection cannot be made; `status` is the HTTP status that says why."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Selection:
    kind: str  # "messages" | "flows" | "filter" | "dead_letters"
    refs: list = field(default_factory=list)
    peeked: list = field(default_factory=list)  # (description dict, body bytes) for peeked ones
    description: str = ""
    notes: list = field(default_factory=list)
    source: dict = field(default_factory=dict)  # how it was chosen, for the job record

    @property
    def total(self):
        return len(self.refs) + len(self.peeked)

    @property
    def truncated(self):
        return sum(1 for ref in self.refs if ref.body_truncated) + sum(
            1 for described, _ in self.peeked if described.get("body_truncated")
        )

    @property
    def requests(self):
        return sum(1 for ref in self.refs if ref.reply_to)

    @property
    def vhosts(self):
        return sorted({ref.vhost for ref in self.refs} | {d["vhost"] for d, _ in self.peeked})

    def first_ids(self, count=20):
        return [ref.message_id for ref in self.refs[:count]]


def _refs(queryset):
    rows = list(queryset.order_by("captured_at", "id").values_list(*_REF_FIELDS)[: MAX_ITEMS + 1])
    if len(rows) > MAX_ITEMS:
        raise SelectionError(
            f"More than {MAX_ITEMS:,} messages match: narrow the selection (a vhost, a time range)."
        )
    return [Ref(*row) for row in rows]


def _ids(values, what):
    ids = []
    for value in values:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise SelectionError(f"{what} must be whole numbers, not {value!r}.") from None
        if not 0 < number <= MAX_ID:
            raise SelectionError(f"{what} must be between 1 and {MAX_ID}, not {number}.")
        ids.append(number)
    if len(ids) > MAX_ITEMS:
        raise SelectionError(f"At most {MAX_ITEMS:,} {what.lower()} at once.")
    return list(dict.fromkeys(ids))


def by_message_ids(values):
    ids = _ids(values, "Message ids")
    refs = _refs(Message.objects.filter(id__in=ids)) if ids else []
    missing = sorted(set(ids) - {ref.message_id for ref in refs})
    if missing:
        shown = ", ".join(f"#{number}" for number in missing[:10])
        raise SelectionError(f"No captured message {shown} (pruned, or never captured).", 404)
    single = f"message #{ids[0]}" if len(ids) == 1 else f"{len(ids):,} chosen messages"
    return Selection("messages", refs, description=single, source={"message_ids": ids})


def by_flow_ids(values):
    ids = _ids(values, "Flow ids")
    flows = dict(Flow.objects.filter(id__in=ids).values_list("id", "request_id"))
    missing = sorted(set(ids) - set(flows))
    if missing:
        shown = ", ".join(f"#{number}" for number in missing[:10])
        raise SelectionError(f"No flow {shown}.", 404)
    orphans = sorted(flow_id for flow_id, request_id in flows.items() if request_id is None)
    if orphans:
        shown = ", ".join(f"#{number}" for number in orphans[:10])
        raise SelectionError(f"Flow {shown} has no captured request to replay (an orphan reply).")
    refs = _refs(Message.objects.filter(id__in=list(flows.values())))
    if len(ids) == 1:
        single = f"the request of flow #{ids[0]}"
    else:
        single = f"the requests of {len(ids):,} flows"
    return Selection("flows", refs, description=single, source={"flow_ids": ids})


def matching(filters):
    """Messages matching the Messages search parameters (a dict of strings).

    The Messages search's own functions (tracer.web.queries) decide, so that a
    "Replay…" link from that page replays exactly what it listed.
    """
    filters = {
        name: str(value)
        for name, value in filters.items()
        if name in FILTER_FIELDS and value not in ("", None)
    }
    try:
        parsed = queries.message_filters(filters, strict=False)
    except queries.BadQuery as error:
        raise SelectionError(str(error)) from None
    return queries.message_queryset(parsed), filters


def _visible_body_matches(refs, text):
    """Only rows whose body matches once masked, as the Messages search shows them."""
    needle = str(text).encode("utf-8")
    names = masked_names()
    kept = set()
    ids = [ref.message_id for ref in refs]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for message_id, body in Message.objects.filter(id__in=chunk).values_list("id", "body"):
            if needle in mask_body(bytes(body), names):
                kept.add(message_id)
    return [ref for ref in refs if ref.message_id in kept]


def by_filter(filters):
    queryset, used = matching(filters)
    notes = []
    if "event" not in used and "queue" not in used:
        # A delivery is the same message as its publish: replaying both would send it twice.
        deliveries = queryset.filter(event=Message.DELIVER).count()
        queryset = queryset.filter(event=Message.PUBLISH)
        if deliveries:
            notes.append(
                f"{deliveries:,} captured deliveries also match; they are copies of published "
                "messages and are left out (filter on event=deliver to replay them)"
            )
    refs = _refs(queryset)
    if "q" in used:
        refs = _visible_body_matches(refs, used["q"])
    words = ", ".join(f"{name}={value}" for name, value in sorted(used.items())) or "everything"
    description = f"messages matching {words}"
    return Selection("filter", refs, description=description, notes=notes, source={"filter": used})


def dead_letters_captured(vhost, queue, limit=None):
    """Captured deliveries from a dead-letter queue, each distinct message once."""
    rows = _refs(Message.objects.filter(vhost=vhost, queue=queue, event=Message.DELIVER))
    fingerprints = dict(
        Message.objects.filter(id__in=[row.message_id for row in rows]).values_list(
            "id", "fingerprint"
        )
    )
    seen, refs = set(), []
    for ref in rows:
        fingerprint = fingerprints.get(ref.message_id)
        if fingerprint in seen:
            continue
        seen.add(fingerprint)
        refs.append(ref)
    notes = []
    if len(refs) < len(rows):
        notes.append(
            f"{len(rows) - len(refs):,} repeated deliveries of the same messages are left out"
        )
    if limit:
        refs = refs[:limit]
    return Selection(
        "dead_letters",
        refs,
        description=f"captured dead letters of queue '{queue}' in vhost '{vhost}'",
        notes=notes,
        source={"dead_letters": {"vhost": vhost, "queue": queue, "from": "captured"}},
    )


def _peek_limit():
    return min(max(int(settings.WARREN_BODY_LIMIT or 0), 65536), 8 * 1024 * 1024)


def peeked(client, vhost, queue, count):
    """Messages at the head of a queue, through the management API (they stay there)."""
    count = max(1, min(int(count or 100), MAX_PEEK))
    got = client.peek(vhost, queue, count=count, truncate=_peek_limit())
    messages = []
    for entry in got or []:
        payload = entry.get("payload") or ""
        if entry.get("payload_encoding") == "base64":
            body = base64.b64decode(payload)
        else:
            body = payload.encode("utf-8")
        size = int(entry.get("payload_bytes") or len(body))
        properties = entry.get("properties")
        described = {
            "vhost": vhost,
            "queue": queue,
            "exchange": entry.get("exchange", ""),
            "routing_key": entry.get("routing_key", ""),
            "properties": properties if isinstance(properties, dict) else {},
            "body_size": size,
            "body_truncated": size > len(body),
        }
        messages.append((described, body))
    return Selection(
        "dead_letters",
        peeked=messages,
        description=f"{len(messages):,} messages peeked from queue '{queue}' in vhost '{vhost}'",
        notes=[
            "peeked messages stay in the queue (they are now marked redelivered): redrive sends "
            "copies, of the messages at the head of the queue when it starts; use the queue "
            "page's Move to take them out instead"
        ],
        source={"dead_letters": {"vhost": vhost, "queue": queue, "from": "peek", "count": count}},
    )
