"""Live events: what the tap tells the browsers after each committed batch.

The tap calls `publish_batch(result, events)` after a commit (and
`publish_sweep` after a timeout sweep); the call only appends to a buffer and
returns. A background thread of the
publisher sends what gathered at most every 100 ms per stream (coalesced: a
flow changed twice in that time is sent once, in its last state) through the
Redis channel layer, so a browser gets a few frames a second, not one per
event. Every event is masked (tracer.masking) before it leaves the process.

A live event is a plain dict (tracer.live.events). A stream no page watches
costs nothing: its events are not even converted. Every second a heartbeat
goes out, so a page can tell a quiet broker from a tap that is away.

Redis down must never block or crash the tap: a send that fails or takes more
than a second drops that frame, counts its events as dropped and waits a
little (1 s, then 2 s, up to 10 s) before trying again.
"""

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Required, TypeAlias, TypedDict, TypeVar

from tracer.live.events import (
    FlowEvent,
    FlowSource,
    MessageEvent,
    MessageSource,
    field_of,
    flow_event,
    message_event,
)
from tracer.live.groups import group_name as group_name  # what consumers join
from tracer.masking import masked_names
from tracer.models import Flow
from tracer.times import from_us, now_us

if TYPE_CHECKING:
    from tracer.store.storage import BatchResult, CapturedEvent

log = logging.getLogger("tracer.live")

MIN_INTERVAL_S = 0.1  # at most ten frames a second per stream
TICK_S = 1.0  # a heartbeat, even when nothing happens, so pages know the tap lives
SEND_TIMEOUT_S = 1.0
RETRY_S = (1.0, 2.0, 5.0, 10.0)
MAX_PENDING = 50_000  # events held while a send is slow; more are dropped and counted
MAX_FRAME_EVENTS = 2_000
SWEEP_LOOKBACK_S = 5.0
WATCHED_CACHE_S = 1.0
UNWATCHED_CACHE_S = 0.25

FLOWS = "flows"
MESSAGES = "messages"

# A channel layer (channels ships no type information).
ChannelLayer: TypeAlias = Any

_Item = TypeVar("_Item")
_Event = TypeVar("_Event")


class Counters(TypedDict):
    """The publisher's counters (LivePublisher.counters)."""

    published: int
    sent: int
    dropped: int
    frames: int
    send_errors: int
    unwatched: int


class PublisherStats(Counters):
    """What stats() tells, and a heartbeat carries as "tap"."""

    pending: int
    redis_ok: bool | None
    # Indexing paused for a busy machine (tracer/tap/give_way.py), how far behind (s).
    index_paused: bool
    index_lag_s: float


class Frame(TypedDict, total=False):
    """What goes to a stream's group: live.flows, live.messages or live.tick."""

    type: Required[str]
    events: list[FlowEvent] | list[MessageEvent]
    gone: list[int]  # ids of deleted flows (live.flows)
    sent_us: int
    handed_us: int | None  # when the tap handed in the frame's last batch
    tap: PublisherStats  # live.tick


# --- the publisher ---------------------------------------------------------------------


def _default_layer() -> ChannelLayer:
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    # A layer of its own: its Redis connections belong to the publisher's loop.
    return channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)


class LivePublisher:
    """Buffers live events and sends them from a thread of its own.

    `publish_batch` and `publish_flows` never raise and never wait for Redis.
    `stats()` tells what was sent and what was dropped.
    """

    def __init__(
        self,
        broker: str | None = None,
        layer_factory: Callable[[], ChannelLayer] | None = None,
        min_interval_s: float = MIN_INTERVAL_S,
        tick_s: float = TICK_S,
        send_timeout_s: float = SEND_TIMEOUT_S,
        max_pending: int = MAX_PENDING,
    ) -> None:
        if broker is None:
            from rabbit.brokers import default_broker

            broker = default_broker().slug
        self.broker: str = broker
        # Makes the channel layer; a new one after a failed send, whose
        # connections may be half dead.
        self._layer_factory = layer_factory or _default_layer
        self._layer: ChannelLayer = None
        self.min_interval_s = min_interval_s
        self.tick_s = tick_s
        self.send_timeout_s = send_timeout_s
        self.max_pending = max_pending
        self._groups = {stream: group_name(stream) for stream in (FLOWS, MESSAGES)}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._messages: deque[MessageSource] = deque()
        self._flows: dict[int, FlowSource] = {}
        self._gone: set[int] = set()
        self._thread: threading.Thread | None = None
        self._handed_us: int | None = None  # when the tap last handed in a batch
        self._watchers: dict[str, tuple[float, bool]] = {}  # stream -> (valid until, watched?)
        self._failures = 0
        self._retry_at = 0.0
        self._last_sent = 0.0
        self._last_tick = 0.0
        self.indexing: tuple[bool, float] = (False, 0.0)  # paused, behind (s): the tap's word
        self.counters: Counters = {
            "published": 0,  # events handed in by the tap
            "sent": 0,  # events that reached Redis
            "dropped": 0,  # events lost: Redis away or the buffer full
            "frames": 0,
            "send_errors": 0,
            "unwatched": 0,  # events no page was watching, so never sent
        }
        self.redis_ok: bool | None = None  # unknown until the first send

    # --- called by the tap -----------------------------------------------------------

    def publish_batch(
        self,
        stored_events: Iterable[MessageSource] = (),
        changed_flows: Iterable[FlowSource] = (),
        deleted_flow_ids: Iterable[int] = (),
    ) -> None:
        """Queue the events of a committed batch. Cheap; never raises."""
        try:
            with self._lock:
                room = self.max_pending - len(self._messages)
                events = list(stored_events)
                if len(events) > room:
                    self.counters["dropped"] += len(events) - max(room, 0)
                    events = events[: max(room, 0)]
                self._messages.extend(events)
                for flow in changed_flows:
                    self._flows[field_of(flow, "id")] = flow
                    self._gone.discard(field_of(flow, "id"))
                for flow_id in deleted_flow_ids:
                    self._flows.pop(flow_id, None)
                    self._gone.add(flow_id)
                self.counters["published"] += len(events)
                self._handed_us = now_us()
            self._start()
            self._wake.set()
        except Exception:  # noqa: BLE001 - live events are a courtesy; storage is what counts
            log.exception("live: could not queue a batch")

    def publish_flows(self, changed_flows: Iterable[FlowSource]) -> None:
        """Flows changed outside a batch (a timeout sweep)."""
        self.publish_batch((), changed_flows)

    def stats(self) -> PublisherStats:
        with self._lock:
            stats: PublisherStats = {
                **self.counters,
                "pending": len(self._messages) + len(self._flows),
                "redis_ok": self.redis_ok,
                "index_paused": self.indexing[0],
                "index_lag_s": self.indexing[1],
            }
        return stats

    def close(self, timeout: float = 2.0) -> None:
        """Send what is buffered (within `timeout`) and stop the thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the sending thread ---------------------------------------------------------------

    def start(self) -> None:
        """Start the sending thread (and its heartbeat) if it is not running."""
        self._start()

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="live-publisher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            while True:
                self._wake.wait(timeout=self.tick_s)
                self._wake.clear()
                stopping = self._stopping.is_set()
                # Coalesce: never more than one frame per stream per interval.
                wait = self._last_sent + self.min_interval_s - time.monotonic()
                if wait > 0 and not stopping:
                    self._stopping.wait(wait)
                self._send_pending(loop)
                if stopping:
                    break
        except Exception:  # noqa: BLE001 - the thread must end quietly, the tap goes on
            log.exception("live: publisher stopped")
        finally:
            self._close_layer(loop)
            loop.close()

    def _close_layer(self, loop: asyncio.AbstractEventLoop) -> None:
        layer = self._layer
        if layer is None:
            return
        self._layer = None
        self._watchers = {}
        # Closing what may already be broken: any error here means nothing.
        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.wait_for(layer.close_pools(), timeout=0.5))

    def _has_pending(self) -> bool:
        with self._lock:
            return bool(self._messages or self._flows or self._gone)

    def _take(self) -> tuple[list[MessageSource], list[FlowSource], list[int]]:
        with self._lock:
            messages, self._messages = self._messages, deque()
            flows, self._flows = self._flows, {}
            gone, self._gone = self._gone, set()
            self._frame_handed_us = self._handed_us
        return list(messages), list(flows.values()), sorted(gone)

    def _convert(
        self,
        make: Callable[[_Item, str, frozenset[str]], _Event],
        items: Iterable[_Item],
        names: frozenset[str],
    ) -> list[_Event]:
        """Live events of `items`; one that cannot be converted is dropped and counted."""
        events = []
        for item in items:
            try:
                events.append(make(item, self.broker, names))
            except Exception:  # noqa: BLE001 - one odd event must not stop the stream
                self._drop(1)
                log.warning("live: an event could not be sent", exc_info=True)
        return events

    def _watched(self, loop: asyncio.AbstractEventLoop, stream: str) -> bool:
        """Whether any page watches `stream`: nobody watching, nothing is converted or sent.

        Asked of the channel layer's group in Redis (a member count), remembered
        for a second when yes and a quarter of a second when no, so that a page
        that just opened misses little. A layer that cannot tell counts as watched.
        """
        now = time.monotonic()
        known = self._watchers.get(stream)
        if known is not None and now < known[0]:
            return known[1]
        watched = loop.run_until_complete(
            asyncio.wait_for(self._members(self._groups[stream]), timeout=self.send_timeout_s)
        )
        keep = WATCHED_CACHE_S if watched else UNWATCHED_CACHE_S
        self._watchers[stream] = (now + keep, watched)
        return watched

    async def _members(self, group: str) -> bool:
        if self._layer is None:
            self._layer = self._layer_factory()
        layer = self._layer
        try:
            key = layer._group_key(group)
            redis = layer.connection(layer.consistent_hash(group))
        except AttributeError:
            return True
        members: int = await redis.zcount(key, int(time.time()) - layer.group_expiry, "+inf")
        return members > 0

    def _frames(
        self, messages: list[MessageSource], flows: list[FlowSource], gone: list[int]
    ) -> list[tuple[str, Frame]]:
        names = masked_names()
        sent_us = now_us()
        frames: list[tuple[str, Frame]] = []
        if flows or gone:
            flow_events = self._convert(flow_event, flows, names)
            frames.append(
                (self._groups[FLOWS], {"type": "live.flows", "events": flow_events, "gone": gone})
            )
        for start in range(0, len(messages), MAX_FRAME_EVENTS):
            message_events = self._convert(
                message_event, messages[start : start + MAX_FRAME_EVENTS], names
            )
            if message_events:
                frames.append(
                    (self._groups[MESSAGES], {"type": "live.messages", "events": message_events})
                )
        for _, frame in frames:
            frame["sent_us"] = sent_us
            # When the tap handed in the frame's last batch: where its delay came from.
            frame["handed_us"] = self._frame_handed_us
        return frames

    def _send_pending(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        messages, flows, gone = self._take()
        count = len(messages) + len(flows)
        frames: list[tuple[str, Frame]] = []
        if count or gone:
            if now < self._retry_at:
                self._drop(count)
                return
            try:
                if messages and not self._watched(loop, MESSAGES):
                    self._unwatched(len(messages))
                    count -= len(messages)
                    messages = []
                if (flows or gone) and not self._watched(loop, FLOWS):
                    self._unwatched(len(flows))
                    count -= len(flows)
                    flows, gone = [], []
            except Exception as error:  # noqa: BLE001 - Redis away: drop, count, retry later
                self._failed(error, count)
                self._close_layer(loop)
                return
            try:
                frames = self._frames(messages, flows, gone)
            except Exception:  # noqa: BLE001 - one odd event must not stop the stream
                log.exception("live: could not build a frame")
                self._drop(count)
                return
        if now - self._last_tick >= self.tick_s and now >= self._retry_at:
            self._last_tick = now
            tick: Frame = {"type": "live.tick", "sent_us": now_us(), "tap": self.stats()}
            frames += [(group, tick) for group in self._groups.values()]
        if not frames:
            return
        try:
            loop.run_until_complete(
                asyncio.wait_for(self._send_all(frames), timeout=self.send_timeout_s)
            )
        except Exception as error:  # noqa: BLE001 - Redis away: drop, count, retry later
            self._failed(error, count)
            self._close_layer(loop)
            return
        self._last_sent = time.monotonic()
        with self._lock:
            self.counters["sent"] += count
            self.counters["frames"] += sum(1 for _, frame in frames if frame["type"] != "live.tick")
        if not self.redis_ok:
            if self.redis_ok is False:
                log.info("live: Redis answers again; live events flow")
            self.redis_ok = True
        self._failures = 0

    async def _send_all(self, frames: list[tuple[str, Frame]]) -> None:
        if self._layer is None:
            self._layer = self._layer_factory()
        for group, frame in frames:
            await self._layer.group_send(group, frame)

    def _unwatched(self, count: int) -> None:
        with self._lock:
            self.counters["unwatched"] += count

    def _drop(self, count: int) -> None:
        with self._lock:
            self.counters["dropped"] += count

    def _failed(self, error: Exception, count: int) -> None:
        self._drop(count)
        # With the error count, under one lock: stats() never shows an error
        # counted while Redis still looks reachable.
        with self._lock:
            was_ok = self.redis_ok
            self.redis_ok = False
            self.counters["send_errors"] += 1
        delay = RETRY_S[min(self._failures, len(RETRY_S) - 1)]
        self._failures += 1
        self._retry_at = time.monotonic() + delay
        if was_ok is not False:
            log.warning("live: cannot reach Redis (%s); dropping live events", error or "timeout")


_publisher: LivePublisher | None = None
_publisher_lock = threading.Lock()


def publisher() -> LivePublisher:
    """The process's publisher (the tap's)."""
    global _publisher
    with _publisher_lock:
        if _publisher is None:
            _publisher = LivePublisher()
        return _publisher


def publish_batch(result: "BatchResult", events: Iterable["CapturedEvent"]) -> None:
    """What the tap calls after each committed batch: its storage.BatchResult and events.

    Only events stored by this batch go out (a recognised duplicate has no id
    of its own); flows are those the batch wrote or deleted.
    """
    try:
        stored = [event for event in events if getattr(event, "id", None) is not None]
        publisher().publish_batch(
            stored,
            getattr(result, "flows", None) or (),
            getattr(result, "deleted_flow_ids", None) or (),
        )
    except Exception:  # noqa: BLE001 - never the tap's problem
        log.exception("live: could not publish a batch")


def tell_indexing(paused: bool, lag_s: float) -> None:
    """Whether indexing is paused for a busy machine and how far behind it is: the
    heartbeat carries it to the Live pages, which show it while no event comes."""
    publisher().indexing = (paused, round(lag_s, 1))


def publish_sweep(swept: int, timeout_s: float, now: int | None = None) -> None:
    """After a timeout sweep turned `swept` flows into timeouts: send those flows.

    The sweep tells only how many; the flows it just swept are those requested
    in the second before the timeout cutoff (a few seconds are looked at, so a
    late tick misses none; a flow sent twice only replaces its row).
    """
    try:
        # The tap sweeps every second: the heartbeat starts here, before any event.
        publisher().start()
        if not swept:
            return
        now = now_us() if now is None else now
        cutoff = now - int(timeout_s * 1_000_000)
        flows = Flow.objects.filter(
            status="timeout",
            requested_at__lt=from_us(cutoff),
            requested_at__gte=from_us(cutoff - int(SWEEP_LOOKBACK_S * 1_000_000)),
        ).order_by("-requested_at")[: min(int(swept), MAX_FRAME_EVENTS)]
        publisher().publish_flows(list(flows.values()))
    except Exception:  # noqa: BLE001 - never the tap's problem
        log.exception("live: could not publish swept timeouts")
