"""How precise a flow's figures are: the tap's resolution, and whether capture was behind.

Capture stamps each trace message with the kernel's arrival time of its own
last bytes (rabbit/packet_stamps.py, or TraceConsumer.read_each in
rabbit/raw.py). Two events the broker sent in one segment get the same stamp:
the time between them is below what the tap can tell, not zero. So every flow
carries the tap's resolution (`resolution_ms`, at least RESOLUTION_MS), and a
figure below it is shown as "< resolution", never as an exact 0.00. An event
whose stamp may be late (read while capture was far behind, when the kernel
may have merged packets and their stamps, or whose packet copy was dropped)
carries how late it may be (`Message.stamp_error_us`); its flow is
`measured_behind`, its resolution that error, and its figures are shown as
approximate ("≈").
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Protocol

from django.db.backends.utils import CursorWrapper

from tracer.models import Flow
from tracer.store.sql import table_of

# The tap's own resolution when it reads each message as it arrives: what the
# wire-capture test bounds its own error by at the median (tests/tracer/
# test_wire_accuracy.py; `manage.py bench accuracy` prints the figures).
RESOLUTION_MS = 0.05
CHUNK = 500


class StampedEvent(Protocol):
    @property
    def flow_id(self) -> int | None: ...
    @property
    def stamp_error_us(self) -> int: ...


def mark_flows(cursor: CursorWrapper, events: Sequence[StampedEvent]) -> None:
    """Give the flows of `events` their resolution (in the batch's transaction)."""
    table = table_of(Flow)
    flows = sorted({event.flow_id for event in events if event.flow_id is not None})
    for start in range(0, len(flows), CHUNK):
        part = flows[start : start + CHUNK]
        marks = ", ".join(["%s"] * len(part))
        cursor.execute(
            f"UPDATE {table} SET resolution_ms = %s "  # noqa: S608 - names are ours
            f"WHERE resolution_ms IS NULL AND id IN ({marks})",
            [RESOLUTION_MS, *part],
        )
    behind: dict[int, int] = defaultdict(int)
    for event in events:
        if event.flow_id is not None and event.stamp_error_us > 0:
            behind[event.flow_id] = max(behind[event.flow_id], event.stamp_error_us)
    if behind:
        cursor.executemany(
            f"UPDATE {table} SET measured_behind = %s, resolution_ms = CASE "  # noqa: S608
            "WHEN resolution_ms IS NULL OR resolution_ms < %s THEN %s ELSE resolution_ms END "
            "WHERE id = %s",
            [(True, error / 1000, error / 1000, flow) for flow, error in behind.items()],
        )


def shown(value_ms: float | None, resolution_ms: float | None, behind: bool) -> str:
    """A figure as the pages write it: "< 0.05 ms" below the resolution, "≈ 3.2 ms"
    when measured behind, else its value (two decimals below 10 ms)."""
    if value_ms is None:
        return "—"
    floor = resolution_ms if resolution_ms is not None else RESOLUTION_MS
    if value_ms < floor:
        return f"< {_number(floor)} ms"
    text = f"{_number(value_ms)} ms"
    return f"≈ {text}" if behind else text


def _number(value_ms: float) -> str:
    if value_ms < 10:
        return f"{value_ms:.2f}"
    if value_ms < 1000:
        return f"{value_ms:.1f}"
    return f"{value_ms:,.0f}"


def precise(flows: Iterable[Flow]) -> list[Flow]:
    """The flows whose figures were measured with capture keeping up."""
    return [flow for flow in flows if not flow.measured_behind]
