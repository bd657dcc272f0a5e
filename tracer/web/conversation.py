"""A conversation (docs/architecture.md) as a sequence diagram, laid out for server-side SVG.

A conversation is every captured event that shares a correlation id, or the
trace id of a W3C `traceparent` header, with where it starts — across hops, as
in the pipes-and-filters chain, where each filter keeps the correlation id and
passes the trace on. Lanes are the connections that publish and consume
(clients, servers, filters), the exchanges and the queues, in the order the
conversation first touches them; arrows are publishes (connection → exchange),
routings (exchange → queue) and deliveries (queue → connection), in time order.
"""

import hashlib
import re
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db.models import Q

from rabbit.management_http import BrokerError
from tracer.masking import mask_properties, masked_names
from tracer.models import Flow, Message
from tracer.store import flow_keys
from tracer.times import from_us, to_us

HORIZON_S = 3600  # how far from its start a conversation is looked for
MAX_EVENTS = 400
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")

# Drawing, in SVG user units.
LANE_WIDTH = 146
GUTTER = 92  # time offsets on the left
HEAD = 80  # lane titles
FIT_LANES = 12  # up to this many lanes the drawing shrinks to the page; beyond, it scrolls
ROW = 30
FOOT = 24
LABEL_CHARS = 20
NAME_CACHE_S = 300
MARKER_KINDS = ("request", "reply", "publish", "route", "deliver", "direct")


class ConversationError(LookupError):
    """Nothing to draw for what was asked, in words."""


def trace_id_of(traceparent):
    match = TRACEPARENT.match((traceparent or "").strip().lower())
    return match.group(1) if match else None


def _traceparent(message):
    headers = (message.properties or {}).get("headers")
    value = headers.get("traceparent") if isinstance(headers, dict) else None
    return value if isinstance(value, str) else None


@dataclass
class Anchor:
    """What the conversation starts from, as found in the database."""

    vhost: str | None = None
    correlation_ids: set = field(default_factory=set)
    trace_ids: set = field(default_factory=set)
    flow_ids: set = field(default_factory=set)
    message_id: int | None = None
    around_us: int | None = None
    title: str = ""


def anchor_for(flow=None, message=None, correlation_id=None, trace=None, vhost=None):
    """An Anchor from one of the ways the page is reached; ConversationError if none."""
    anchor = Anchor(vhost=vhost or None)
    if flow is not None:
        row = Flow.objects.filter(id=flow).first()
        if row is None:
            raise ConversationError(f"There is no flow {flow}.")
        anchor.vhost = row.vhost
        anchor.flow_ids.add(row.id)
        if row.correlation_id:
            anchor.correlation_ids.add(row.correlation_id)
        anchor.around_us = to_us(row.started_at)
        anchor.title = f"flow {row.id} · {row.service or 'orphan reply'}"
    elif message is not None:
        row = Message.objects.filter(id=message).defer("body").first()
        if row is None:
            raise ConversationError(f"There is no message {message}.")
        anchor.vhost = row.vhost
        anchor.around_us = to_us(row.captured_at)
        if row.correlation_id:
            anchor.correlation_ids.add(row.correlation_id)
        trace_id = trace_id_of(_traceparent(row))
        if trace_id:
            anchor.trace_ids.add(trace_id)
        if row.flow_id:
            anchor.flow_ids.add(row.flow_id)
        anchor.title = f"message #{row.id}"
        anchor.message_id = row.id
    elif correlation_id:
        anchor.correlation_ids.add(correlation_id)
        anchor.title = f"correlation id {correlation_id}"
    elif trace:
        trace = trace.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{32}", trace):
            raise ConversationError("A trace id is 32 hexadecimal digits.")
        anchor.trace_ids.add(trace)
        anchor.title = f"trace {trace}"
    else:
        raise ConversationError("Choose a flow, a message, a correlation id or a trace id.")
    return anchor


def _scope(queryset, anchor):
    if anchor.vhost:
        queryset = queryset.filter(vhost=anchor.vhost)
    if anchor.around_us is not None:
        horizon = HORIZON_S * 1_000_000
        queryset = queryset.filter(
            captured_at__gte=from_us(anchor.around_us - horizon),
            captured_at__lte=from_us(anchor.around_us + horizon),
        )
    return queryset


def gather(anchor, limit=MAX_EVENTS):
    """The conversation's messages in time order (bodies left out).

    Correlation ids lead to trace ids and trace ids to more correlation ids,
    twice over: enough for a chain of hops without walking the whole table.
    """
    found = {}
    seen_correlations, seen_traces = set(), set()
    base = Message.objects.defer("body")
    if anchor.flow_ids:
        for message in _scope(base.filter(flow_id__in=anchor.flow_ids), anchor)[:limit]:
            found[message.id] = message
    if anchor.message_id is not None:
        for message in base.filter(id=anchor.message_id):
            found[message.id] = message
    for _ in range(3):
        new_correlations = anchor.correlation_ids - seen_correlations
        new_traces = anchor.trace_ids - seen_traces
        if not new_correlations and not new_traces:
            break
        seen_correlations |= new_correlations
        seen_traces |= new_traces
        query = Q(correlation_id__in=sorted(new_correlations)) if new_correlations else Q()
        for trace_id in sorted(new_traces):
            query |= Q(properties__headers__traceparent__icontains=trace_id)
        if not query:
            break
        for message in _scope(base.filter(query), anchor).order_by("captured_at")[:limit]:
            found[message.id] = message
        for message in found.values():
            if message.correlation_id:
                anchor.correlation_ids.add(message.correlation_id)
            trace_id = trace_id_of(_traceparent(message))
            if trace_id:
                anchor.trace_ids.add(trace_id)
            if anchor.around_us is None:
                anchor.around_us = to_us(message.captured_at)
        if len(found) >= limit:
            break
    messages = sorted(found.values(), key=lambda m: (m.captured_at, m.id))[:limit]
    return messages


# --- layout ------------------------------------------------------------------------------


@dataclass
class Lane:
    key: tuple
    kind: str  # client, server, service, publisher, consumer, exchange, queue
    name: str
    x: float = 0.0
    label: str = ""
    sub: str = ""

    @property
    def lines(self):
        return label_lines(self.label)


@dataclass
class Arrow:
    kind: str  # publish, request, reply, route, deliver, direct, unroutable
    source: Lane
    target: Lane
    at_us: int
    label: str
    message_id: int | None
    y: float = 0.0
    offset_text: str = ""
    detail: str = ""
    url: str = ""

    @property
    def x1(self):
        return self.source.x

    @property
    def x2(self):
        # Stop short of the lifeline so the arrow head stays visible.
        if self.source is self.target:
            return self.source.x
        return self.target.x - 6 if self.target.x > self.source.x else self.target.x + 6

    @property
    def label_x(self):
        return (self.source.x + self.target.x) / 2

    @property
    def leftward(self):
        return self.target.x < self.source.x


@dataclass
class Diagram:
    lanes: list
    arrows: list
    width: float
    height: float
    messages: list
    flows: list
    head: int = HEAD

    @property
    def fits(self):
        return len(self.lanes) <= FIT_LANES

    duration_ms: float = 0.0

    @property
    def lifeline_bottom(self):
        return self.height - FOOT / 2


def label_lines(text, limit=LABEL_CHARS):
    """A lane title in at most two lines, broken at a space where one fits."""
    text = text or ""
    if len(text) <= limit:
        return [text]
    cut = text.rfind(" ", 0, limit + 1)
    if cut <= 0:
        cut = limit
    return [text[:cut].rstrip(), _short(text[cut:].strip(), limit)]


def _short(text, limit=LABEL_CHARS):
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _exchange_name(exchange):
    return exchange or "(default)"


def _roles(messages):
    """What each connection does in the conversation: client, server, filter, ..."""
    published, consumed, requested, served = set(), set(), set(), set()
    for message in messages:
        if message.event == flow_keys.PUBLISH:
            published.add(message.connection)
            if message.reply_to:
                requested.add(message.connection)
        else:
            consumed.add(message.connection)
            if message.reply_to:
                served.add(message.connection)
    roles = {}
    for connection in published | consumed:
        if connection in requested:
            roles[connection] = "client"
        elif connection in served:
            roles[connection] = "server"
        elif connection in published and connection in consumed:
            roles[connection] = "service"
        elif connection in published:
            roles[connection] = "publisher"
        else:
            roles[connection] = "consumer"
    return roles


def _offset_text(us):
    ms = us / 1000
    if ms < 10:
        return f"+{ms:.2f} ms"
    if ms < 1000:
        return f"+{ms:.1f} ms"
    return f"+{ms / 1000:.2f} s"


def short_address(connection):
    """`127.0.0.1:60088 -> 127.0.0.1:5672` as the client's end, `127.0.0.1:60088`."""
    return (connection or "").split(" -> ")[0] or "(unnamed connection)"


def connection_labels(broker, connections):
    """{broker connection name: the name its client gave}, for those the broker still knows.

    The firehose names a connection by its addresses; a client that set
    `connection_name` is easier to recognise by it. Asked of the management
    API one connection at a time (a conversation has a handful), remembered a
    few minutes; a connection gone or a broker away just keeps its address.
    """
    labels = {}
    client = None
    for name in sorted({c for c in connections if c}):
        digest = hashlib.blake2b(name.encode(), digest_size=12).hexdigest()
        key = f"warren:connection-label:{broker.slug}:{digest}"
        label = cache.get(key)
        if label is None:
            try:
                client = client or broker.client(timeout=2)
                properties = client.connection(name).get("client_properties") or {}
                label = str(properties.get("connection_name") or "")
            except BrokerError:
                label = ""
            cache.set(key, label, NAME_CACHE_S)
        if label:
            labels[name] = label
    return labels


def layout(messages, flows=(), labels=None):
    """Lanes and arrows of the messages (in time order), positioned for drawing.

    `labels` names connections better than their addresses (connection_labels).
    """
    roles = _roles(messages)
    labels = labels or {}
    lanes = {}

    def lane(kind, name):
        key = ("connection", name) if kind not in ("exchange", "queue") else (kind, name)
        if key not in lanes:
            if key[0] == "connection":
                role = roles.get(name, kind)
                label = labels.get(name) or short_address(name)
            else:
                role, label = kind, name
            lanes[key] = Lane(key, role, name, label=label, sub=role)
        return lanes[key]

    names = masked_names()
    requesters = {}  # reply_to -> the connection that asked
    arrows = []
    for message in messages:
        at = to_us(message.captured_at)
        if message.event == flow_keys.PUBLISH:
            source = lane("connection", message.connection)
            exchange = lane("exchange", _exchange_name(message.exchange))
            kind = "publish"
            if message.reply_to:
                kind = "request"
                requesters[message.reply_to] = source
            elif message.flow_id:
                kind = "reply"  # in a flow without reply_to: a reply (or an orphan one)
            arrows.append(
                Arrow(
                    kind,
                    source,
                    exchange,
                    at,
                    message.routing_key or "(empty key)",
                    message.id,
                    detail=_detail(message, names),
                )
            )
            routed = message.routed_queues or []
            if flow_keys.is_direct_reply_to(message.routing_key) and not routed:
                target = requesters.get(message.routing_key)
                if target is not None:
                    arrows.append(
                        Arrow("direct", exchange, target, at, "direct reply-to", message.id)
                    )
            for queue in routed:
                arrows.append(Arrow("route", exchange, lane("queue", queue), at, "", message.id))
            if not routed and not flow_keys.is_direct_reply_to(message.routing_key):
                arrows.append(Arrow("unroutable", exchange, exchange, at, "unroutable", message.id))
        else:
            source = lane("queue", message.queue)
            target = lane("connection", message.connection)
            label = "redelivered" if message.redelivered else "deliver"
            arrows.append(
                Arrow(
                    "deliver", source, target, at, label, message.id, detail=_detail(message, names)
                )
            )
    ordered = list(lanes.values())
    for index, item in enumerate(ordered):
        item.x = GUTTER + LANE_WIDTH * index + LANE_WIDTH / 2
    start = to_us(messages[0].captured_at) if messages else 0
    for index, arrow in enumerate(arrows):
        arrow.y = HEAD + ROW * index + ROW * 0.8
        arrow.offset_text = _offset_text(arrow.at_us - start)
    end = to_us(messages[-1].captured_at) if messages else 0
    return Diagram(
        lanes=ordered,
        arrows=arrows,
        width=GUTTER + LANE_WIDTH * max(len(ordered), 1) + 16,
        height=HEAD + ROW * max(len(arrows), 1) + ROW + FOOT,
        messages=messages,
        flows=list(flows),
        duration_ms=round((end - start) / 1000, 3),
    )


def _detail(message, names):
    """One line for the arrow's tooltip: ids and content type, masked."""
    properties = mask_properties(message.properties or {}, names)
    parts = [f"#{message.id}", message.event]
    for key in ("correlation_id", "content_type", "type"):
        if properties.get(key):
            parts.append(f"{key} {properties[key]}")
    parts.append(f"{message.body_size} bytes")
    return " · ".join(str(part) for part in parts)


def build(broker=None, **anchor_params):
    """The Diagram for a flow, message, correlation id or trace id; ConversationError if empty.

    With `broker`, connections are labelled with the names their clients gave.
    """
    anchor = anchor_for(**anchor_params)
    messages = gather(anchor)
    if not messages:
        raise ConversationError("No captured events belong to this conversation (yet).")
    flow_ids = {message.flow_id for message in messages if message.flow_id}
    flows = Flow.objects.filter(id__in=flow_ids).order_by("started_at")
    labels = connection_labels(broker, {m.connection for m in messages}) if broker else {}
    diagram = layout(messages, flows, labels)
    diagram.labels = labels
    diagram.title = anchor.title
    diagram.correlation_ids = sorted(anchor.correlation_ids)
    diagram.trace_ids = sorted(anchor.trace_ids)
    return diagram
