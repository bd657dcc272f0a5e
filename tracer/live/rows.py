"""Live events (dicts from tracer.live.events) as rows the live pages render.

The same `flow_row`/`message_row` feed the first render, the htmx refresh and
the WebSocket push, through the same template partials; only figures for
display are added here (time of day, links, the status pill).
"""

from datetime import UTC, datetime
from urllib.parse import urlencode

from django.db.models import BinaryField, Q
from django.db.models.functions import Substr
from django.urls import NoReverseMatch, reverse

from rabbit.brokers import default_broker
from tracer.live.events import PREVIEW_SOURCE_BYTES, flow_event, message_event
from tracer.live.subscriptions import ERRORS, FLOWS, SLOW, visible_pairs
from tracer.models import Flow, Message

STATUS_PILLS = {"complete": "ok", "pending": "info", "timeout": "bad", "orphan": "warn"}


def time_text(us):
    """12:01:03.042 (UTC) from epoch microseconds."""
    if us is None:
        return "–"
    moment = datetime.fromtimestamp(us / 1_000_000, tz=UTC)
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _reverse_or_none(name, *args):
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def conversation_url(**params):
    params = {name: value for name, value in params.items() if value not in (None, "")}
    return reverse("conversation") + "?" + urlencode(params)


def flow_url(flow_id):
    """The Flow timeline page, or the sequence view until that page exists."""
    return _reverse_or_none("flow", flow_id) or conversation_url(flow=flow_id)


def message_url(message_id):
    return _reverse_or_none("message", message_id) or conversation_url(message=message_id)


def flow_row(event):
    row = dict(event)
    row["time_text"] = time_text(event.get("started_us"))
    row["url"] = flow_url(event["id"])
    row["pill"] = STATUS_PILLS.get(event["status"], "")
    row["conversation_url"] = conversation_url(flow=event["id"])
    return row


def message_row(event):
    row = dict(event)
    row["time_text"] = time_text(event.get("captured_us"))
    row["url"] = message_url(event["id"])
    row["where"] = event["queue"] if event["event"] == "deliver" else event["routing_key"]
    row["exchange_label"] = event["exchange"] or "(default)"
    row["unroutable"] = event["event"] == "publish" and event.get("routed_queues") == []
    row["conversation_url"] = (
        conversation_url(correlation_id=event["correlation_id"], vhost=event["vhost"])
        if event.get("correlation_id")
        else conversation_url(message=event["id"])
    )
    return row


# --- the newest rows from the database, for the first render and htmx refresh ----------------

SCAN_CHUNK = 500
SCAN_LIMIT = 5000  # rows looked at to find `limit` that match a filter the database cannot


def _flow_queryset(flt):
    flows = Flow.objects.all()
    if flt.vhost:
        flows = flows.filter(vhost=flt.vhost)
    if flt.service:
        flows = flows.filter(service=flt.service)
    if flt.correlation_id:
        flows = flows.filter(correlation_id=flt.correlation_id)
    if flt.status == SLOW:
        flows = flows.filter(Q(latency_ms__gt=flt.slow_ms) | Q(status="timeout"))
    elif flt.status == ERRORS:
        flows = flows.filter(Q(status__in=("timeout", "orphan")) | Q(late=True))
    elif flt.status == "timeout":
        flows = flows.filter(Q(status="timeout") | Q(late=True))
    elif flt.status:
        flows = flows.filter(status=flt.status)
    return flows.order_by("-started_at", "-id")


def _message_queryset(flt):
    messages = Message.objects.defer("body").annotate(
        body_head=Substr("body", 1, PREVIEW_SOURCE_BYTES, output_field=BinaryField())
    )
    if flt.vhost:
        messages = messages.filter(vhost=flt.vhost)
    if flt.exchange:
        messages = messages.filter(exchange="" if flt.exchange == "(default)" else flt.exchange)
    if flt.queue:
        messages = messages.filter(queue=flt.queue)
    if flt.correlation_id:
        messages = messages.filter(correlation_id=flt.correlation_id)
    if flt.status in ("publish", "deliver"):
        messages = messages.filter(event=flt.status)
    elif flt.status == "redelivered":
        messages = messages.filter(redelivered=True)
    elif flt.status == "unroutable":
        messages = messages.filter(event="publish")
    return messages.order_by("-id")


def recent(flt, user, limit=50):
    """The newest stored events matching `flt` that `user` may see, as live events."""
    broker = default_broker().slug  # the tap records the default broker's traffic
    if flt.stream == FLOWS:
        queryset, make = _flow_queryset(flt), flow_event
    else:
        queryset, make = _message_queryset(flt), _stored_message_event
    found = []
    visible = {}
    for start in range(0, SCAN_LIMIT, SCAN_CHUNK):
        chunk = list(queryset[start : start + SCAN_CHUNK])
        for row in chunk:
            event = make(row, broker)
            pair = (broker, event["vhost"])
            if pair not in visible:
                visible[pair] = pair in visible_pairs(user, {pair})
            if visible[pair] and flt.matches(event):
                found.append(event)
                if len(found) >= limit:
                    return found
        if len(chunk) < SCAN_CHUNK:
            break
    return found


def _stored_message_event(message, broker):
    message.body = message.body_head
    return message_event(message, broker)
