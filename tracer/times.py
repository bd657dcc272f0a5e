"""Times as the tracer keeps them: integer microseconds since the epoch inside,
aware UTC datetimes in the database, ISO 8601 with microseconds in the API."""

import time
from datetime import UTC, datetime, timedelta
from typing import overload

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def now_us() -> int:
    return time.time_ns() // 1000


@overload
def from_us(us: int) -> datetime: ...
@overload
def from_us(us: None) -> None: ...
def from_us(us: int | None) -> datetime | None:
    return None if us is None else EPOCH + timedelta(microseconds=us)


@overload
def to_us(value: datetime) -> int: ...
@overload
def to_us(value: None) -> None: ...
def to_us(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // MICROSECOND


@overload
def iso(value: datetime) -> str: ...
@overload
def iso(value: None) -> None: ...
def iso(value: datetime | None) -> str | None:
    """2024-05-01T12:00:03.000125Z — always with microseconds, always UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    # %Y leaves out leading zeros on some platforms (year 1 as "1"): the year by hand.
    return f"{value.year:04d}" + value.strftime("-%m-%dT%H:%M:%S.%fZ")


def minute_us(us: int) -> int:
    return us - us % 60_000_000
