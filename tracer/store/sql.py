"""Plain SQL for the tap's writes: quoting, time columns, chunks.

The tap writes and reads with cursors, not ORM objects (tracer/store/storage.py):
these helpers give it the backend's own forms (SQLite keeps times as Django's
naive UTC text, PostgreSQL as timestamptz) without a datetime object per value.
"""

import functools
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import TypeAlias, TypeVar, overload

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

from tracer.times import from_us, to_us

IN_CHUNK = 500

# A time parameter or column as the backend has it: SQLite's text, PostgreSQL's datetime.
DbTime: TypeAlias = str | datetime
# One SQL parameter as the tap passes them (a subset of what Django's cursor adapts).
SqlParam: TypeAlias = str | bytes | int | float | bool | datetime | None

T = TypeVar("T")


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def table_of(model: type[Model]) -> str:
    return quote(model._meta.db_table)


_NAIVE_EPOCH = datetime(1970, 1, 1)


@functools.cache
def is_sqlite() -> bool:
    return connection.vendor == "sqlite"


def db_time(us: int | None) -> DbTime | None:
    """A time parameter as the backend stores it (SQLite: Django's naive UTC text)."""
    if us is None:
        return None
    if is_sqlite():
        return sqlite_time(us)
    return from_us(us)


_second_texts: dict[int, str] = {}


def sqlite_time(us: int) -> str:
    """str(naive UTC datetime), as Django writes it, without a datetime per call.

    The tap writes tens of thousands of times a second that share a handful of
    seconds: the "YYYY-MM-DD HH:MM:SS" part is kept per second.
    """
    seconds, micro = divmod(us, 1_000_000)
    prefix = _second_texts.get(seconds)
    if prefix is None:
        if len(_second_texts) > 4096:
            _second_texts.clear()
        prefix = _second_texts[seconds] = str(_NAIVE_EPOCH + timedelta(seconds=seconds))
        remember_second(prefix)
    return f"{prefix}.{micro:06d}" if micro else prefix


# The tap's connection writes index pages all over the message table: a page
# cache far above SQLite's default 2 MB keeps them in memory (bounded: 16 MB),
# and the write-ahead log is folded back (with an fsync) every 64 MB rather than
# every 4 MB, not after nearly every big batch.
WRITER_PRAGMAS = (
    "PRAGMA cache_size = -16384",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA wal_autocheckpoint = 16384",
)


def tune_writer_connection(
    sender: object = None, connection: BaseDatabaseWrapper | None = None, **_: object
) -> None:
    """connection_created receiver (and direct call): SQLite settings for the tap."""
    if connection is not None and connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            for pragma in WRITER_PRAGMAS:
                cursor.execute(pragma)


def chunks(items: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def is_postgres() -> bool:
    return not is_sqlite()


_second_values: dict[str, int] = {}


@overload
def us_from_db(value: DbTime) -> int: ...
@overload
def us_from_db(value: None) -> None: ...
def us_from_db(value: DbTime | None) -> int | None:
    """A time column as microseconds: SQLite gives text, PostgreSQL a datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        # "YYYY-MM-DD HH:MM:SS[.ffffff]" as sqlite_time writes it: the seconds
        # are looked up per distinct second, the fraction read as it is.
        size = len(value)
        if size != 19 and (size != 26 or value[19] != "."):
            return to_us(datetime.fromisoformat(value))
        seconds = _second_values.get(value[:19])
        if seconds is None:
            seconds = remember_second(value[:19])
        return seconds + (int(value[20:]) if size == 26 else 0)
    return to_us(value)


def remember_second(text: str) -> int:
    if len(_second_values) > 4096:
        _second_values.clear()
    value = _second_values[text] = to_us(datetime.fromisoformat(text))
    return value


def column(name: str, is_time: bool) -> str:
    """A column to select; on SQLite a time comes as its stored text (CAST): the
    driver's datetime converter per value costs more than us_from_db reading it."""
    if is_time and is_sqlite():
        return f"CAST({quote(name)} AS TEXT)"
    return quote(name)


def marks(count: int) -> str:
    return ", ".join(["%s"] * count)
