"""What a vhost's reader tells the tap's writer besides events, in order with them."""

from typing import TYPE_CHECKING, Literal, TypeAlias, TypedDict, Unpack

from rabbit.field_tables import AMQPRawError
from tracer.times import now_us

if TYPE_CHECKING:
    from tracer.tap.reader import VhostReader


class ConnectionLost(AMQPRawError):
    """The feeder's connection ended, leaving `unacked` deliveries to come back first."""

    def __init__(self, reason: str, unacked: int = 0) -> None:
        super().__init__(reason)
        self.unacked = unacked

    @property
    def broker_failed_to_deliver(self) -> bool:
        return "541" in str(self)


ControlKind: TypeAlias = Literal[
    "connected", "dropped", "tracing_off", "duplicates", "spool_full", "spool_ok"
]


class ControlFields(TypedDict, total=False):
    # connected: when the connection was lost; tracing_off: seen on; spool_*: full since
    since_us: int | None
    dropped: int  # dropped: by the tap queue; duplicates: copies capture let go
    depth: int
    reason: str


class Control:
    """A reader's news for the writer, queued in order with its events."""

    __slots__ = ("kind", "reader", "at_us", "since_us", "dropped", "depth", "reason")

    kind: ControlKind
    reader: "VhostReader"
    at_us: int
    since_us: int | None
    dropped: int
    depth: int
    reason: str

    def __init__(
        self, kind: ControlKind, reader: "VhostReader", **fields: Unpack[ControlFields]
    ) -> None:
        self.kind = kind
        self.reader = reader
        self.at_us = now_us()
        self.since_us = fields.get("since_us")
        self.dropped = fields.get("dropped", 0)
        self.depth = fields.get("depth", 0)
        self.reason = fields.get("reason", "")
