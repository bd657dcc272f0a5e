"""The tap's side of a vhost's feeder process (tracer/tap/feed.py): starting it
(again, after it ended) from where the database stands, what it decoded, and
what the tap tells it (capture's commits, the writer's)."""

import logging
import select

from tracer.tap import feed as tap_feed
from tracer.tap.children import Child

log = logging.getLogger("tracer.tap")


class FeederLink:
    """One vhost's feeder process, or none while it is to be started (again)."""

    def __init__(self, vhost: str) -> None:
        self.vhost = vhost
        self._child: Child | None = None

    def ensure(self, settings: tap_feed.FeederConfig) -> None:
        """Start the feeder unless it runs; one that ended is replaced."""
        child = self._child
        if child is not None and child.process.poll() is None:
            return
        if child is not None:
            log.warning("vhost %r: the feeder process ended; starting another", self.vhost)
            child.close(tap_feed.CLOSE)
        self._child = Child("tracer.tap.feed", (tap_feed.CONFIG, settings))

    def pid(self) -> int | None:
        """Its process id, None while there is no feeder."""
        return self._child.process.pid if self._child is not None else None

    def fileno(self) -> int | None:
        """Its pipe, readable when it sent events; None while there is no feeder."""
        return self._child.conn.fileno() if self._child is not None else None

    def take(self, timeout: float) -> list[list[tap_feed.Pair]]:
        """The chunks of decoded events it sent, in order (waiting at most
        `timeout` for the first). A feeder whose pipe broke is let go, to be
        started again by the next ensure()."""
        child = self._child
        if child is None:
            return []
        chunks: list[list[tap_feed.Pair]] = []
        pipe = [child.conn.fileno()]
        try:
            # select() on the pipe itself: Connection.poll() builds a selector per
            # call, which cost the tap's process 8 % of its time between chunks.
            if not select.select(pipe, [], [], timeout)[0]:
                return chunks
            while select.select(pipe, [], [], 0)[0]:
                message = child.conn.recv()
                if message[0] == tap_feed.EVENTS:
                    chunks.append(message[1])
        except (EOFError, OSError):
            self.stop()
        return chunks

    def tell(self, message: tap_feed.ToFeeder) -> None:
        """Send it `message` (nothing while there is no feeder; thread-safe)."""
        child = self._child
        if child is not None:
            child.send(message)

    def stop(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.close(tap_feed.CLOSE)
