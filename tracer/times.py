"""Times as the tracer keeps them: integer microseconds since the epoch inside,
aware UTC datetimes in the database, ISO 8601 with microseconds in the API."""

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def now_us():
    return time.time_ns() // 1000


def from_us(us):
    return None if us is None else EPOCH + timedelta(microseconds=us)


def to_us(value):
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // MICROSECOND


def iso(value):
    """2024-05-01T12:00:03.000125Z — always with microseconds, always UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def minute_us(us):
    return us - us % 60_000_000
