"""The events pairing reads and the groups they fall into. Pure: no database, no Django.

A *group* is ``(vhost, reply queue, correlation id)`` (``""`` = no correlation
id): everything that can belong to the flows answered on one reply queue under
one correlation id. An event may fall into a group as request side (its
``reply_to``) and as reply side (the key it was published or routed with, and
the queue a delivery came from); its *home group* is the one that decides its
flow (tracer.store.pairing).

A delivery carries its publish's routing key, so a reply's delivery joins the
group of the key it was routed by even when the queue it came from has
another name.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

PUBLISH = "publish"
DELIVER = "deliver"

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
DIRECT_REPLY_TO_PREFIX = DIRECT_REPLY_TO + "."

# (vhost, reply queue, correlation id): a group.
GroupKey: TypeAlias = tuple[str, str, str]
# (vhost, queue): a queue known to receive replies.
ReplyQueueKey: TypeAlias = tuple[str, str]


@dataclass(slots=True)
class Event:
    """One captured publish or delivery, as pairing needs it."""

    id: int
    kind: str  # PUBLISH or DELIVER
    at: int  # microseconds since the epoch
    vhost: str
    exchange: str = ""
    routing_key: str = ""  # the first routing key (publish and deliver)
    queue: str = ""  # deliver only
    correlation_id: str = ""
    reply_to: str = ""
    redelivered: bool = False
    fingerprint: int = 0  # hash of properties and body: ties a delivery to its publish
    backlog: bool = False
    flow_id: int | None = None  # as stored; None for a new event
    # publish only: the queues the broker routed it to (empty when unknown)
    routed_queues: tuple[str, ...] = ()
    # a request publish: its service as the service rules name it (tracer.store.services);
    # empty: exchange and routing key
    service: str = ""


def is_direct_reply_to(queue: str) -> bool:
    return queue == DIRECT_REPLY_TO or queue.startswith(DIRECT_REPLY_TO_PREFIX)


def _target(event: Event) -> str:
    """A publish's routing key; a delivery's routing key when it came through another
    name (a reply routed by key to a queue bound with it), else its queue."""
    if event.kind == PUBLISH or (event.routing_key and event.routing_key != event.queue):
        return event.routing_key
    return event.queue


def group_keys(event: Event) -> list[GroupKey]:
    """The groups an event may belong to: as request side, as reply side."""
    keys: list[GroupKey] = []
    if event.reply_to:
        keys.append((event.vhost, event.reply_to, event.correlation_id))
    for target in (_target(event), event.queue if event.kind == DELIVER else ""):
        key = (event.vhost, target, event.correlation_id)
        if target and target != event.reply_to and key not in keys:
            keys.append(key)
    return keys


def home_group(event: Event) -> GroupKey | None:
    """The one group that decides the event's flow: a request side wins, then the key a
    delivery was routed by."""
    if event.reply_to:
        return (event.vhost, event.reply_to, event.correlation_id)
    target = _target(event)
    return (event.vhost, target, event.correlation_id) if target else None


def keys_of(events: Iterable[Event]) -> set[GroupKey]:
    """The groups a batch of new events touches: the ones to load and recompute."""
    keys: set[GroupKey] = set()
    for event in events:
        keys.update(group_keys(event))
    return keys
