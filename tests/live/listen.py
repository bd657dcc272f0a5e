"""Listening to the live groups on the real Redis, as a browser's consumer would."""

import asyncio
import threading
import time

from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

from tracer.live import publish as live


class Listener:
    """Joins the live groups; `collect` gathers frames until a condition holds."""

    def __init__(self, streams=(live.FLOWS, live.MESSAGES)):
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.groups = [live.group_name(stream) for stream in streams]
        self.frames = []
        # One loop for the listener's life (the layer's buffers belong to it), on
        # a thread of its own: the browser tests keep a loop running in this one.
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self._run(self._join())

    def _serve(self):
        self.loop.run_forever()
        self.loop.close()  # here: channels-redis flushes on close, in this loop's thread

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    async def _join(self):
        self.channel = await self.layer.new_channel()
        for group in self.groups:
            await self.layer.group_add(group, self.channel)

    def collect(self, until, timeout=5.0):
        """Frames received until `until(frames)` is true or `timeout` passes."""
        return self._run(self._collect(until, timeout))

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
        self._run(self._leave())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

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
