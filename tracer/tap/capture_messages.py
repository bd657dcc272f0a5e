"""What the tap and a capture process say to each other over their socket pair
(tracer/tap/reader.py starts capture, tracer/tap/capture.py runs it): the
tap sends the settings first (credentials never on the command line), then
asks to cancel or close; capture says when it is ready, what it spooled,
when the spool is full and again not, and what ended it.
"""

from multiprocessing.connection import Connection
from typing import Any, Final, Literal, TypeAlias, TypedDict

# Tap -> capture
CONFIG: Final = "config"  # first message: where to read (credentials never on the command line)
CANCEL: Final = "cancel"
CLOSE: Final = "close"
# Capture -> tap
READY: Final = "ready"
SPOOLED: Final = "spooled"
SPOOL_FULL: Final = "spool_full"
SPOOL_OK: Final = "spool_ok"
CANCELLED: Final = "cancelled"
LOST: Final = "lost"


class CaptureConfig(TypedDict):
    """The CONFIG message's settings: run()'s keyword arguments."""

    url: str
    vhost: str
    name: str
    queue: str
    prefetch: int
    spool_path: str
    spool_max: int
    backlog: int  # the first this many deliveries waited in the queue while nobody read it
    crash_after_commits: int  # fault injection for tests: exit after a commit, before its ack
    # After a 541: the prefetch is the count left unacked; commit (and ack) them
    # all at once, so the broker tries the message it choked on only then.
    ack_together: bool
    # The committer's niceness (the backgrounded tap's): capture itself starts
    # at the niceness the tap was started with (tracer/tap/priority.py).
    committer_niceness: int | None


ToCapture: TypeAlias = (
    tuple[Literal["config"], CaptureConfig] | tuple[Literal["cancel"]] | tuple[Literal["close"]]
)
FromCapture: TypeAlias = (
    tuple[Literal["ready"], str, str]  # the spool's id, how messages are stamped
    | tuple[Literal["spooled"], int, int, int]  # last sequence number, frames, duplicates dropped
    | tuple[Literal["spool_full"], int, str]  # since (µs), why
    | tuple[Literal["spool_ok"], int, int]  # full since, until (µs)
    | tuple[Literal["cancelled"]]
    | tuple[Literal["lost"], str, int]  # why, how many deliveries were left unacked
)
Received: TypeAlias = tuple[Any, ...]
CaptureEnd: TypeAlias = "Connection[FromCapture, Received]"  # generic to mypy only
