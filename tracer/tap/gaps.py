"""The tap's gaps — the tap away, a lost connection, tracing off, events dropped,
the spool full — as TapGap rows, never lost to a database that is away.

A gap comes up when something went wrong, often while the database is the
thing that is wrong (locked, restarting): a gap that cannot be written waits
here, in order, and is written with the next batch or tick that gets through.
Only a tap that ends while the database is still away loses them (logged).
"""

import logging
from collections import deque
from typing import NamedTuple

from django.db import InterfaceError, OperationalError, connection

from tracer.models import TapGap
from tracer.times import from_us

log = logging.getLogger("tracer.tap")

OVERFLOW = "tap queue full"
OVERFLOW_MERGE_S = 5.0  # drops this close to the last ones extend its gap


class Gap(NamedTuple):
    vhost: str
    since_us: int
    until_us: int
    dropped: int
    reason: str


class Gaps:
    """Gaps to write; `problems` (the tap's) says when some wait."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.due: deque[Gap] = deque()
        self.problems = problems

    def record(self, vhost: str, since_us: int, until_us: int, dropped: int, reason: str) -> None:
        self.due.append(Gap(vhost, since_us, until_us, dropped, reason))
        self.write()

    def overflow(self, vhost: str, at_us: int, dropped: int) -> None:
        """Drops while running: one gap per burst of overflow, extended while it lasts."""
        if not self.due:  # else the latest is not in the database yet: a gap of its own
            try:
                if _extend_overflow(vhost, at_us, dropped):
                    return
            except (OperationalError, InterfaceError) as error:
                self._refused(error)
        self.record(vhost, at_us - 1_000_000, at_us, dropped, OVERFLOW)

    def write(self) -> bool:
        """Write what waits, oldest first; False while the database refuses."""
        while self.due:
            gap = self.due[0]
            try:
                row = TapGap.objects.create(
                    vhost=gap.vhost,
                    started_at=from_us(gap.since_us),
                    ended_at=from_us(gap.until_us),
                    dropped=gap.dropped,
                    reason=gap.reason,
                )
            except (OperationalError, InterfaceError) as error:
                self._refused(error)
                return False
            self.due.popleft()
            log.warning("gap recorded: %s", row)
        self.problems.pop("gaps", None)
        return True

    def _refused(self, error: Exception) -> None:
        self.problems["gaps"] = f"{len(self.due)} gaps wait to be recorded: {error}"
        connection.close()

    def lost(self) -> None:
        """The tap ends with gaps unwritten: say what they were."""
        for gap in self.due:
            log.error("gap not recorded (the database refused it): %s", gap)


def _extend_overflow(vhost: str, at_us: int, dropped: int) -> bool:
    recent = from_us(at_us - int(OVERFLOW_MERGE_S * 1_000_000))
    gap = (
        TapGap.objects.filter(vhost=vhost, reason=OVERFLOW, ended_at__gte=recent)
        .order_by("-ended_at")
        .first()
    )
    if gap is None:
        return False
    gap.ended_at = from_us(at_us)
    gap.dropped += dropped
    gap.save(update_fields=["ended_at", "dropped"])
    return True
