"""Live events for the browser: the tap publishes what each batch changed.

Sent through the Redis channel layer to group `LIVE_GROUP`, at most every
`EVERY_S` seconds (changes in between are gathered), so browsers get a few
frames a second however fast events arrive. Flows carry no bodies or headers;
message summaries carry no body or properties, so nothing here needs masking
(what does goes through tracer.masking). Never slows or stops the tap: with
Redis away, sending pauses and retries later.
"""

import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from tracer import serialize

log = logging.getLogger("tracer.live")

LIVE_GROUP = "tracer.live"
EVERY_S = 0.15
MAX_FLOWS = 500
MAX_MESSAGES = 200
RETRY_AFTER_S = 10.0


class LivePublisher:
    def __init__(self):
        self.flows = {}
        self.messages = []
        self.events_by_vhost = {}
        self.last_sent = 0.0
        self.paused_until = 0.0

    def add(self, result, events):
        for flow in result.flows:
            self.flows[flow.id] = flow
        for event in events:
            self.events_by_vhost[event.vhost] = self.events_by_vhost.get(event.vhost, 0) + 1
        room = MAX_MESSAGES - len(self.messages)
        if room > 0:
            self.messages.extend(event for event in events[:room] if event.id is not None)
        now = time.monotonic()
        if now - self.last_sent >= EVERY_S and now >= self.paused_until:
            self.send(now)

    def send(self, now):
        flows = list(self.flows.values())[-MAX_FLOWS:]
        payload = {
            "type": "tracer.batch",
            "flows": [serialize.live_flow(flow) for flow in flows],
            "flows_total": len(self.flows),
            "messages": [serialize.live_message(event) for event in self.messages],
            "events_by_vhost": self.events_by_vhost,
            "sent_at_us": time.time_ns() // 1000,
        }
        self.flows, self.messages, self.events_by_vhost = {}, [], {}
        self.last_sent = now
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(LIVE_GROUP, payload)
        except Exception as error:  # Redis away or full: the tap goes on
            log.warning("live events paused for %ss: %s", RETRY_AFTER_S, error)
            self.paused_until = now + RETRY_AFTER_S


_publisher = LivePublisher()


def publish_batch(result, events):
    _publisher.add(result, events)
