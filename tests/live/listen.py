"""Listening to the live groups on the real Redis, as a browser's consumer would."""

import asyncio
import time

from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

from tracer import live


class Listener:
    """Joins the live groups; `collect` gathers frames until a condition holds."""

    def __init__(self, streams=(live.FLOWS, live.MESSAGES)):
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.groups = [live.group_name(stream) for stream in streams]
        self.frames = []
        # One loop for the listener's life: the layer's buffers belong to it.
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._join())

    async def _join(self):
        self.channel = await self.layer.new_channel()
        for group in self.groups:
            await self.layer.group_add(group, self.channel)

    def collect(self, until, timeout=5.0):
        """Frames received until `until(frames)` is true or `timeout` passes."""
        return self.loop.run_until_complete(self._collect(until, timeout))

    async def _collect(self, until, timeout):
        deadline = time.monotonic() + timeout
        while not until(self.frames):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                frame = await asyncio.wait_for(self.layer.receive(self.channel), remaining)
            except TimeoutError:
                break
            frame["received_at"] = time.monotonic()
            self.frames.append(frame)
        return self.frames

    def close(self):
        self.loop.run_until_complete(self._leave())
        self.loop.close()

    async def _leave(self):
        for group in self.groups:
            await self.layer.group_discard(group, self.channel)
        await self.layer.close_pools()


def events_of(frames, kind, vhost):
    """Live events of one vhost in frames of type `kind` ("live.flows" / "live.messages")."""
    return [
        event
        for frame in frames
        if frame["type"] == kind
        for event in frame.get("events", ())
        if event["vhost"] == vhost
    ]
