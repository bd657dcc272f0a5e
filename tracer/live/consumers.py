"""WebSocket consumers of the live pages: /ws/flows/ and /ws/messages/.

Thin (docs/architecture.md, House style): join the stream's group, one handler per event type,
recheck access on every frame. A page subscribes by sending
`{"type": "subscribe", "filters": {...}}` (the filter form's fields) and may
`pause` and `resume`; the consumer sends rendered rows (the pages' own template
partials) and a status with the true rates.

When more events match than a person can read, the consumer sends a sample —
about READABLE_PER_S rows a second, the newest few of every frame — and says so; rows already
on the page keep getting their updates (a pending call turns complete).
"""

import contextlib
import time
from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model
from django.http import QueryDict
from django.template.loader import render_to_string

from console import access
from tracer.live import publish as live
from tracer.live import rows
from tracer.live.subscriptions import FLOWS, MESSAGES, Filter, FilterError, visible_pairs
from tracer.times import now_us

READABLE_PER_S = 25.0  # rows a second a person can still follow
BURST = 40.0  # a quiet stream may show a short burst whole
RATE_WINDOW_S = 2.0
STATUS_EVERY_S = 1.0
SAMPLED_SEND_EVERY_S = 0.25  # while sampling, rows go out at most four times a second
REMEMBERED_ROWS = 1000
COUNTED_FLOWS = 50_000  # flow ids remembered so that an update is not counted as a new call

# Close codes the page understands (4000-4999 are the application's own).
CLOSE_DENIED = 4403
CLOSE_UNAVAILABLE = 4503


class RateMeter:
    """Events seen, matched and shown per second over the last couple of seconds."""

    def __init__(self, window_s=RATE_WINDOW_S):
        self.window_s = window_s
        self.samples = deque()

    def add(self, seen, matched, shown, now=None):
        now = time.monotonic() if now is None else now
        self.samples.append((now, seen, matched, shown))
        while self.samples and now - self.samples[0][0] > self.window_s:
            self.samples.popleft()

    def rates(self, now=None):
        now = time.monotonic() if now is None else now
        while self.samples and now - self.samples[0][0] > self.window_s:
            self.samples.popleft()
        if not self.samples:
            return {"seen": 0.0, "matched": 0.0, "shown": 0.0}
        # A young meter divides by the time it has watched, not the whole window.
        span = max(min(self.window_s, now - self.samples[0][0] + 0.1), 0.5)
        totals = [sum(sample[index] for sample in self.samples) for index in (1, 2, 3)]
        return {
            name: round(total / span, 1)
            for name, total in zip(("seen", "matched", "shown"), totals, strict=True)
        }


class Sampler:
    """Chooses the rows to send: all when few, the newest of each frame when too many."""

    def __init__(self, per_second=READABLE_PER_S, burst=BURST):
        self.per_second = per_second
        self.burst = burst
        self.tokens = burst
        self.last = time.monotonic()
        self.shown = {}  # ids on the page, oldest first (dicts keep order)
        self.sampled_until = 0.0
        self.last_fresh = 0

    def choose(self, events, now=None):
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.per_second)
        self.last = now
        updates = [event for event in events if event["id"] in self.shown]
        fresh = [event for event in events if event["id"] not in self.shown]
        allowance = int(self.tokens)
        if len(fresh) > allowance or self.sampling(now):
            if len(fresh) > allowance:
                self.sampled_until = now + RATE_WINDOW_S
            # Sampled, a call is shown once settled: at such rates nobody sees it
            # pending, and a row that needs no update later costs the page nothing.
            fresh = [event for event in fresh if event.get("status") != "pending"]
            # The newest of the frame: a live view shows the latest, and over time
            # the sample still spreads evenly, a few rows from every frame.
            fresh.sort(key=lambda event: event.get("stamp_us") or 0)
            fresh = fresh[len(fresh) - allowance :] if allowance > 0 else []
        self.tokens -= len(fresh)
        self.last_fresh = len(fresh)
        for event in fresh:
            self.shown[event["id"]] = True
        while len(self.shown) > REMEMBERED_ROWS:
            self.shown.pop(next(iter(self.shown)))
        chosen = updates + fresh
        chosen.sort(key=lambda event: event.get("stamp_us") or 0)
        return chosen

    def forget(self, ids):
        for flow_id in ids:
            self.shown.pop(flow_id, None)

    def reset(self):
        self.shown.clear()
        self.tokens = self.burst
        self.sampled_until = 0.0

    def sampling(self, now=None):
        return (time.monotonic() if now is None else now) < self.sampled_until


def _fresh_access(user_id, pairs):
    """(may still view, visible (broker, vhost) pairs) for a user read anew from the database.

    A user deactivated or stripped of their role since the socket opened loses
    the stream at the next frame.
    """
    user = get_user_model().objects.filter(pk=user_id).prefetch_related("groups").first()
    if user is None or not access.can_view(user):
        return False, set()
    return True, visible_pairs(user, pairs)


class LiveConsumer(AsyncJsonWebsocketConsumer):
    stream = FLOWS
    template = "live_flows.html#flow_rows"

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not await database_sync_to_async(access.can_view)(user):
            await self.close(code=CLOSE_DENIED)
            return
        self.user_id = user.pk
        query = QueryDict(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            self.filter = Filter.parse(self.stream, query)
        except FilterError:
            self.filter = Filter(stream=self.stream)
        self.sampler = Sampler()
        self.meter = RateMeter()
        self.counted = {}
        self.paused = False
        self.held = 0
        self.tap = None
        self.tap_heard = None
        self.last_status = 0.0
        self.last_rows = 0.0
        self.gone_later = []
        self.group = live.group_name(self.stream)
        await self.accept()
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
        except Exception:  # noqa: BLE001 - Redis away: the page says so and comes back
            await self.send_json({"type": "unavailable", "error": "The live feed is unavailable."})
            await self.close(code=CLOSE_UNAVAILABLE)
            return
        await self.send_json({"type": "subscribed", **self._subscription()})

    async def websocket_disconnect(self, message):
        group = getattr(self, "group", None)  # None: refused before joining
        # Redis away: the group entry expires on its own.
        with contextlib.suppress(Exception):
            if group:
                await self.channel_layer.group_discard(group, self.channel_name)
        await super().websocket_disconnect(message)

    # --- from the page ---------------------------------------------------------------

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "subscribe":
            try:
                self.filter = Filter.parse(self.stream, content.get("filters") or {})
            except FilterError as error:
                await self.send_json({"type": "error", "error": str(error)})
                return
            self.sampler.reset()
            self.meter = RateMeter()
            await self.send_json({"type": "subscribed", **self._subscription()})
        elif kind == "pause":
            self.paused = True
            await self._send_status(force=True)
        elif kind == "resume":
            self.paused = False
            self.held = 0
            await self._send_status(force=True)
        else:
            await self.send_json({"type": "error", "error": "Unknown message."})

    def _subscription(self):
        return {"filters": self.filter.as_dict(), "description": self.filter.describe()}

    # --- from the tap, through the channel layer --------------------------------------------

    async def live_flows(self, frame):
        await self._frame(frame)

    async def live_messages(self, frame):
        await self._frame(frame)

    async def live_tick(self, frame):
        self.tap = frame.get("tap")
        self.tap_heard = frame.get("sent_us")
        await self._send_status()

    async def _frame(self, frame):
        events = frame.get("events") or []
        pairs = {(event["broker"], event["vhost"]) for event in events}
        allowed, visible = await database_sync_to_async(_fresh_access)(self.user_id, pairs)
        if not allowed:
            await self.send_json({"type": "denied", "error": "Your access to Warren has ended."})
            await self.close(code=CLOSE_DENIED)
            return
        seen = [event for event in events if (event["broker"], event["vhost"]) in visible]
        matched = [event for event in seen if self.filter.matches(event)]
        novel = self._novel(seen)
        seen_count = len(novel)
        matched_count = sum(1 for event in matched if event["id"] in novel)
        gone = [flow_id for flow_id in frame.get("gone") or () if flow_id in self.sampler.shown]
        self.sampler.forget(gone)
        if self.paused:
            self.held += matched_count
            self.meter.add(seen_count, matched_count, 0)
            await self._send_status()
            return
        now = time.monotonic()
        if self.sampler.sampling(now) and now - self.last_rows < SAMPLED_SEND_EVERY_S:
            # Sampled: fewer, fuller messages; each one costs the page a repaint.
            self.gone_later.extend(gone)
            self.meter.add(seen_count, matched_count, 0)
            await self._send_status()
            return
        gone, self.gone_later = self.gone_later + gone, []
        chosen = self.sampler.choose(matched)
        self.meter.add(seen_count, matched_count, self.sampler.last_fresh)
        if not chosen and not gone:
            await self._send_status()
            return
        await self.send_json(
            {
                "type": "rows",
                "html": self._render(chosen),
                "stamps": [event.get("stamp_us") for event in chosen],
                "gone": [f"flow-{flow_id}" for flow_id in gone],
                "handed_us": frame.get("handed_us"),
                "sent_us": frame.get("sent_us"),
                "pushed_us": now_us(),
                "status": self._status(),
            }
        )
        self.last_status = self.last_rows = time.monotonic()

    def _novel(self, events):
        """Ids not counted before: a flow changes several times (pending, then complete)
        but is one call in the rates."""
        if self.stream != FLOWS:
            return {event["id"] for event in events}
        novel = {event["id"] for event in events if event["id"] not in self.counted}
        for flow_id in novel:
            self.counted[flow_id] = None
        while len(self.counted) > COUNTED_FLOWS:
            self.counted.pop(next(iter(self.counted)))
        return novel

    def _render(self, events):
        make_row = rows.flow_row if self.stream == FLOWS else rows.message_row
        return render_to_string(self.template, {"rows": [make_row(event) for event in events]})

    def _status(self):
        rates = self.meter.rates()
        return {
            "rates": rates,
            "sampled": self.sampler.sampling(),
            "readable_per_s": READABLE_PER_S,
            "paused": self.paused,
            "held": self.held,
            "tap": self.tap,
            "tap_heard_us": self.tap_heard,
            "description": self.filter.describe(),
        }

    async def _send_status(self, force=False):
        now = time.monotonic()
        if not force and now - self.last_status < STATUS_EVERY_S:
            return
        self.last_status = now
        await self.send_json({"type": "status", "status": self._status()})


class FlowsConsumer(LiveConsumer):
    stream = FLOWS
    template = "live_flows.html#flow_rows"


class MessagesConsumer(LiveConsumer):
    stream = MESSAGES
    template = "live_messages.html#message_rows"
