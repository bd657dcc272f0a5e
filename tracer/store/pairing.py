"""RPC pairing (docs/architecture.md, Pairing): events in, flows out. Pure: no database, no Django.

A *group* is ``(vhost, reply queue, correlation id)`` (``""`` = no correlation
id): everything that can belong to the flows answered on one reply queue under
one correlation id (which groups an event falls into: tracer.store.flow_keys).
Within a group an event plays one role:

- request            publish whose ``reply_to`` is the group's reply queue
- request delivery   deliver whose ``reply_to`` is the group's reply queue
- reply              publish routed with the reply queue as routing key (any exchange)
- reply delivery     deliver of a reply from a queue its publish was routed to
                     (`routed_queues`): the reply queue itself, or — when
                     `reply_to` is a routing key on the framework's own exchange
                     (nameko's pattern: the caller's queue bound to a topic
                     exchange with the caller's id) — the queue bound with that
                     key. None for direct reply-to.

A group's flows are a function of the group's events alone (sorted by time, then
id), so the result does not depend on the order events arrived in. Storage
keeps pairing stateless by recomputing, for every batch, the groups its new
events belong to from what the database holds (`recompute`): several tap
processes can share one tap queue and a reply stored before its request still
pairs.

Each flow's id is the id of its request event (an orphan's: its reply's), so a
message can point at its flow before the flow row exists.
"""

import bisect
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from tracer.store.flow_keys import (
    DELIVER,
    PUBLISH,
    Event,
    GroupKey,
    ReplyQueueKey,
    group_keys,
    home_group,
    is_direct_reply_to,
)

PENDING = "pending"
COMPLETE = "complete"
TIMEOUT = "timeout"
ORPHAN = "orphan"
STATUSES = (PENDING, COMPLETE, TIMEOUT, ORPHAN)

BY_CORRELATION_ID = "correlation_id"
BY_REPLY_TO = "reply_to"


@dataclass(slots=True)
class Flow:
    id: int
    vhost: str
    service: str
    correlation_id: str | None
    reply_to: str
    pairing: str
    status: str
    started_at: int  # requested_at, or replied_at for an orphan
    requested_at: int | None
    request_delivered_at: int | None
    replied_at: int | None
    reply_delivered_at: int | None
    latency_ms: float | None
    queue_wait_ms: float | None
    service_ms: float | None
    end_to_end_ms: float | None
    request_id: int | None
    reply_id: int | None
    replies: int
    redeliveries: int
    late: bool
    backlog: bool
    members: frozenset[int] = field(default_factory=frozenset)


@dataclass
class Changes:
    """What storage has to write after a recompute."""

    flows: dict[int, Flow]  # flow id -> Flow (insert or update)
    delete_flow_ids: set[int]  # flows owned by recomputed groups that no longer exist
    # event id -> flow id or None, for every event whose home group was recomputed
    flow_of: dict[int, int | None]


def service_of(exchange: str, routing_key: str) -> str:
    """A service named by where its request went (the service rules' last resort,
    tracer.store.services): `rpc_queue`, `amq.topic / weather.ohio`."""
    return f"{exchange} / {routing_key}" if exchange else routing_key


def _sort_key(event: Event) -> tuple[int, int]:
    return (event.at, event.id)


def _ms(later: int | None, earlier: int | None) -> float | None:
    if later is None or earlier is None:
        return None
    return round((later - earlier) / 1000.0, 3)


def _closest_before(candidates: Sequence[Event], at: int) -> Event:
    """The latest candidate at or before `at`, else the earliest (clock skew)."""
    times = [candidate.at for candidate in candidates]
    index = bisect.bisect_right(times, at)
    return candidates[index - 1] if index else candidates[0]


def _attach(deliveries: Iterable[Event], publishes: Sequence[Event]) -> dict[int, list[Event]]:
    """Each delivery to the publish it delivers: same fingerprint first, then time."""
    attached: dict[int, list[Event]] = {publish.id: [] for publish in publishes}
    if not publishes:
        return attached
    by_fingerprint: dict[int, list[Event]] = {}
    for publish in publishes:
        by_fingerprint.setdefault(publish.fingerprint, []).append(publish)
    for delivery in deliveries:
        candidates = by_fingerprint.get(delivery.fingerprint) or publishes
        attached[_closest_before(candidates, delivery.at).id].append(delivery)
    return attached


def _routed_to(reply: Event, queue: str, reply_queue: str) -> bool:
    """Could the broker have delivered `reply` from `queue`? Its routed queues say;
    a reply whose routed queues are unknown reaches the reply queue only."""
    return queue in reply.routed_queues if reply.routed_queues else queue == reply_queue


def _attach_replies(
    deliveries: Iterable[Event], replies: Sequence[Event], reply_queue: str
) -> dict[int, list[Event]]:
    """Each reply delivery to its reply: among the replies routed to its queue, same
    fingerprint first, then time. A delivery no reply was routed to stays out."""
    attached: dict[int, list[Event]] = {reply.id: [] for reply in replies}
    by_queue: dict[str, list[Event]] = {}
    for delivery in deliveries:
        by_queue.setdefault(delivery.queue, []).append(delivery)
    for queue, delivered in by_queue.items():
        routed = [reply for reply in replies if _routed_to(reply, queue, reply_queue)]
        for reply_id, own in _attach(delivered, routed).items():
            attached[reply_id].extend(own)
    return attached


def _assign_by_correlation_id(
    requests: Sequence[Event], replies: Iterable[Event]
) -> tuple[dict[int, list[Event]], list[Event]]:
    answers: dict[int, list[Event]] = {request.id: [] for request in requests}
    for reply in replies:
        answers[_closest_before(requests, reply.at).id].append(reply)
    return answers, []


def _assign_by_reply_to(
    requests: Sequence[Event], replies: Iterable[Event], timeout_us: int
) -> tuple[dict[int, list[Event]], list[Event]]:
    """Without a correlation id the oldest pending request takes the reply.

    A request that has already waited longer than the timeout only takes a reply
    when no request within the timeout is waiting: one lost request must not
    shift every later pairing on that reply queue.
    """
    answers: dict[int, list[Event]] = {request.id: [] for request in requests}
    orphans: list[Event] = []
    timeline = sorted(
        [(r.at, 0, r.id, r) for r in requests] + [(r.at, 1, r.id, r) for r in replies]
    )
    pending: list[Event] = []
    for at, is_reply, _, event in timeline:
        if not is_reply:
            pending.append(event)
            continue
        if not pending:
            orphans.append(event)
            continue
        chosen = next((r for r in pending if at - r.at <= timeout_us), pending[0])
        pending.remove(chosen)
        answers[chosen.id].append(event)
    return answers, orphans


def _request_flow(
    key: GroupKey,
    request: Event,
    deliveries: Iterable[Event],
    replies: Iterable[Event],
    reply_deliveries: dict[int, list[Event]],
    timeout_us: int,
    now_us: int,
) -> Flow:
    vhost, reply_queue, correlation_id = key
    deliveries = sorted(deliveries, key=_sort_key)
    replies = sorted(replies, key=_sort_key)
    first_reply = replies[0] if replies else None
    replied_at = first_reply.at if first_reply else None

    delivery = None
    if deliveries:
        delivery = deliveries[0]
        if replied_at is not None:
            # The delivery that produced the answer: the last one before it.
            before = [d for d in deliveries if d.at <= replied_at]
            if before:
                delivery = before[-1]
    reply_delivery = None
    if first_reply is not None:
        own = sorted(reply_deliveries.get(first_reply.id, ()), key=_sort_key)
        reply_delivery = own[0] if own else None

    if first_reply is not None:
        status = COMPLETE
    elif now_us - request.at > timeout_us:
        status = TIMEOUT
    else:
        status = PENDING
    timed = [request, first_reply, delivery, reply_delivery]
    members = {request.id, *(d.id for d in deliveries), *(r.id for r in replies)}
    for reply in replies:
        members.update(d.id for d in reply_deliveries.get(reply.id, ()))
    requested_at = request.at
    delivered_at = delivery.at if delivery else None
    reply_delivered_at = reply_delivery.at if reply_delivery else None
    return Flow(
        id=request.id,
        vhost=vhost,
        service=request.service or service_of(request.exchange, request.routing_key),
        correlation_id=correlation_id or None,
        reply_to=reply_queue,
        pairing=BY_CORRELATION_ID if correlation_id else BY_REPLY_TO,
        status=status,
        started_at=requested_at,
        requested_at=requested_at,
        request_delivered_at=delivered_at,
        replied_at=replied_at,
        reply_delivered_at=reply_delivered_at,
        latency_ms=_ms(replied_at, requested_at),
        queue_wait_ms=_ms(delivered_at, requested_at),
        service_ms=_ms(replied_at, delivered_at),
        end_to_end_ms=_ms(reply_delivered_at, requested_at),
        request_id=request.id,
        reply_id=first_reply.id if first_reply else None,
        replies=len(replies),
        redeliveries=sum(1 for d in deliveries if d.redelivered),
        late=replied_at is not None and replied_at - requested_at > timeout_us,
        backlog=any(event.backlog for event in timed if event is not None),
        members=frozenset(members),
    )


def _orphan_flow(key: GroupKey, reply: Event, reply_deliveries: dict[int, list[Event]]) -> Flow:
    vhost, reply_queue, correlation_id = key
    own = sorted(reply_deliveries.get(reply.id, ()), key=_sort_key)
    delivery = own[0] if own else None
    return Flow(
        id=reply.id,
        vhost=vhost,
        service="",
        correlation_id=correlation_id or None,
        reply_to=reply_queue,
        pairing=BY_CORRELATION_ID if correlation_id else BY_REPLY_TO,
        status=ORPHAN,
        started_at=reply.at,
        requested_at=None,
        request_delivered_at=None,
        replied_at=reply.at,
        reply_delivered_at=delivery.at if delivery else None,
        latency_ms=None,
        queue_wait_ms=None,
        service_ms=None,
        end_to_end_ms=None,
        request_id=None,
        reply_id=reply.id,
        replies=1,
        redeliveries=0,
        late=False,
        backlog=reply.backlog or bool(delivery and delivery.backlog),
        members=frozenset({reply.id, *(d.id for d in own)}),
    )


def _roles(
    key: GroupKey, events: Iterable[Event]
) -> tuple[list[Event], list[Event], list[Event], list[Event]]:
    reply_queue = key[1]
    requests: list[Event] = []
    request_deliveries: list[Event] = []
    replies: list[Event] = []
    reply_deliveries: list[Event] = []
    for event in sorted(events, key=_sort_key):
        if event.reply_to == reply_queue:
            (requests if event.kind == PUBLISH else request_deliveries).append(event)
        elif event.kind == PUBLISH and event.routing_key == reply_queue:
            replies.append(event)
        elif event.kind == DELIVER and reply_queue in (event.queue, event.routing_key):
            reply_deliveries.append(event)
    return requests, request_deliveries, replies, reply_deliveries


def pair_group(
    key: GroupKey,
    events: Iterable[Event],
    *,
    known_reply_queue: bool,
    timeout_s: float,
    now_us: int,
) -> list[Flow]:
    """The flows of one group, from all of its events."""
    requests, request_deliveries, replies, reply_deliveries = _roles(key, events)
    if not requests and not replies:
        return []
    known = known_reply_queue or bool(requests) or is_direct_reply_to(key[1])
    if not requests and not known:
        return []
    timeout_us = int(timeout_s * 1_000_000)
    answers: dict[int, list[Event]]
    orphans: list[Event]
    if not requests:
        answers, orphans = {}, list(replies)
    elif key[2]:
        answers, orphans = _assign_by_correlation_id(requests, replies)
    else:
        answers, orphans = _assign_by_reply_to(requests, replies, timeout_us)
    delivered = _attach(request_deliveries, requests)
    reply_delivered = _attach_replies(reply_deliveries, replies, key[1])
    flows = [
        _request_flow(
            key,
            request,
            delivered[request.id],
            answers[request.id],
            reply_delivered,
            timeout_us,
            now_us,
        )
        for request in requests
    ]
    flows.extend(_orphan_flow(key, reply, reply_delivered) for reply in orphans)
    return flows


def _by_group(
    events: Iterable[Event], keys: Collection[GroupKey] | None = None
) -> dict[GroupKey, list[Event]]:
    groups: dict[GroupKey, list[Event]] = {}
    for event in events:
        for key in group_keys(event):
            if keys is None or key in keys:
                groups.setdefault(key, []).append(event)
    return groups


def _flow_of(
    events: Iterable[Event], flows_by_group: dict[GroupKey, list[Flow]]
) -> dict[int, int | None]:
    """Which flow each event belongs to, decided by its home group only."""
    # (home group, event id) -> flow id; looked up with home_group's None too.
    member_of: dict[tuple[GroupKey | None, int], int] = {}
    for key, flows in flows_by_group.items():
        for flow in flows:
            for event_id in flow.members:
                member_of.setdefault((key, event_id), flow.id)
    assigned: dict[int, int | None] = {}
    for event in events:
        home = home_group(event)
        if home in flows_by_group:
            assigned[event.id] = member_of.get((home, event.id))
    return assigned


def pair(
    events: Iterable[Event],
    *,
    known_reply_queues: Collection[ReplyQueueKey] = frozenset(),
    timeout_s: float,
    now_us: int,
) -> tuple[dict[int, Flow], dict[int, int | None]]:
    """All flows of a set of events, and which flow each event belongs to.

    `known_reply_queues`: (vhost, queue) pairs known to receive replies; a reply
    there that matches no request is an orphan.
    """
    events = _unique(events)
    flows_by_group = {
        key: pair_group(
            key,
            group,
            known_reply_queue=(key[0], key[1]) in known_reply_queues,
            timeout_s=timeout_s,
            now_us=now_us,
        )
        for key, group in _by_group(events).items()
    }
    flows = {flow.id: flow for group in flows_by_group.values() for flow in group}
    return flows, _flow_of(events, flows_by_group)


def _unique(events: Iterable[Event]) -> list[Event]:
    seen: dict[int, Event] = {}
    for event in events:
        seen[event.id] = event
    return list(seen.values())


def recompute(
    loaded: Iterable[Event],
    new: Iterable[Event],
    keys: Collection[GroupKey],
    *,
    known_reply_queues: Collection[ReplyQueueKey] = frozenset(),
    timeout_s: float,
    now_us: int,
) -> Changes:
    """Incremental pairing: recompute `keys` from stored and new events.

    `loaded` must hold every stored event of each group in `keys` (more is
    harmless) with its stored `flow_id`, plus every event attached to a flow
    whose request is loaded. A loaded event attached to a flow whose defining
    event was not loaded (beyond what storage looked at) is left where it is.
    """
    candidates = {event.id: event for event in loaded}
    for event in new:
        candidates[event.id] = event
    usable = [
        event
        for event in candidates.values()
        if event.flow_id is None or event.flow_id in candidates
    ]
    groups = _by_group(usable, keys)
    flows_by_group: dict[GroupKey, list[Flow]] = {}
    owned: set[int] = set()
    for key, group in groups.items():
        flows_by_group[key] = pair_group(
            key,
            group,
            known_reply_queue=(key[0], key[1]) in known_reply_queues,
            timeout_s=timeout_s,
            now_us=now_us,
        )
        for event in group:
            if event.kind == PUBLISH and (event.reply_to == key[1] or not event.reply_to):
                owned.add(event.id)
    flows = {flow.id: flow for group in flows_by_group.values() for flow in group}
    flow_of = _flow_of(usable, flows_by_group)
    return Changes(flows=flows, delete_flow_ids=owned - set(flows), flow_of=flow_of)
