"""What a tap is told: vhosts, where to read, bounds and batch sizes.

From the settings (docs/architecture.md, Configuration), with overrides from
`manage.py tap`'s options and the tests.
"""

from dataclasses import dataclass
from typing import Any, Self, TypedDict, Unpack

from django.conf import settings

from rabbit.brokers import default_broker


class TapOverrides(TypedDict, total=False):
    """TapConfig.from_settings()'s keywords: None keeps the setting or default."""

    vhosts: list[str] | None
    amqp_url: str | None
    queue: str | None
    max_length: int | None
    max_bytes: int | None
    body_limit: int | None
    timeout_s: float | None
    batch_size: int | None
    batch_ms: float | None
    prefetch: int | None
    crash_after_batches: int | None
    crash_capture_after: int | None
    stop_grace_s: float | None
    spool_dir: str | None
    spool_max: int | None
    spool_max_age_s: float | None
    index_niceness: int | None
    index_pause_max_s: float | None
    follow_choice: bool | None


@dataclass
class TapConfig:
    vhosts: list[str]
    amqp_url: str
    queue: str
    max_length: int
    max_bytes: int
    body_limit: int
    timeout_s: float
    # Big batches: at high rates a call's four events (spread over the calls in
    # flight) mostly meet in one batch, which pairs them in memory; measured
    # with `manage.py bench capacity`.
    batch_size: int = 8000
    batch_ms: float = 100.0
    prefetch: int = 16000
    crash_after_batches: int = 0  # fault injection for tests: exit after a commit
    crash_capture_after: int = 0  # ...and capture's: exit after a spool commit, before its ack
    # Asked to stop, the tap finishes its batch, acks and says goodbye; whatever
    # holds it up past this, it writes every thread's stack to its log and exits.
    stop_grace_s: float = 4.0
    # Where capture's spool files are, and their bounds (WARREN_SPOOL_*).
    spool_dir: str = "var/spool"
    spool_max: int = 4 * 1024**3
    spool_max_age_s: float = 7 * 86400.0
    index_niceness: int = 5  # the writer thread and the feeders run this much nicer than capture
    # Indexing pauses while the machine is busy, at most this far behind (0: never).
    index_pause_max_s: float = 30.0
    # Read the vhosts chosen in the console (tracer/store/traced.py; `vhosts`
    # seeds that choice), not `vhosts` alone: what `manage.py tap` does
    # unless --vhost names them.
    follow_choice: bool = False

    @classmethod
    def from_settings(cls, **overrides: Unpack[TapOverrides]) -> Self:
        values: dict[str, Any] = {
            "vhosts": list(settings.WARREN_TRACE_VHOSTS),
            "amqp_url": default_broker().amqp_url(),
            "queue": settings.WARREN_TAP_QUEUE,
            "max_length": settings.WARREN_TAP_QUEUE_MAX_LENGTH,
            "max_bytes": settings.WARREN_TAP_QUEUE_MAX_BYTES,
            "body_limit": settings.WARREN_BODY_LIMIT,
            "timeout_s": settings.WARREN_RPC_TIMEOUT,
            "stop_grace_s": settings.WARREN_TAP_STOP_GRACE,
            "spool_dir": str(settings.WARREN_SPOOL_DIR),
            "spool_max": settings.WARREN_SPOOL_MAX,
            "spool_max_age_s": settings.WARREN_SPOOL_MAX_AGE,
            "index_niceness": settings.WARREN_INDEX_NICENESS,
            "index_pause_max_s": float(settings.WARREN_INDEX_PAUSE_MAX),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)
