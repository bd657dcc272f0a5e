"""Plain SQL for the tap's writes: quoting, time columns, chunks.

The tap writes and reads with cursors, not ORM objects (tracer/store/storage.py):
these helpers give it the backend's own forms (SQLite keeps times as Django's
naive UTC text, PostgreSQL as timestamptz) without a datetime object per value.
"""

import functools
from datetime import datetime, timedelta

from django.db import connection

from tracer.times import from_us, to_us

IN_CHUNK = 500


def quote(name):
    return connection.ops.quote_name(name)


def table_of(model):
    return quote(model._meta.db_table)


_NAIVE_EPOCH = datetime(1970, 1, 1)


@functools.cache
def is_sqlite():
    return connection.vendor == "sqlite"


def db_time(us):
    """A time parameter as the backend stores it (SQLite: Django's naive UTC text)."""
    if us is None:
        return None
    if is_sqlite():
        return sqlite_time(us)
    return from_us(us)


_second_texts = {}


def sqlite_time(us):
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


def tune_writer_connection(sender=None, connection=None, **_):
    """connection_created receiver (and direct call): SQLite settings for the tap."""
    if connection is not None and connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            for pragma in WRITER_PRAGMAS:
                cursor.execute(pragma)


def chunks(items, size=IN_CHUNK):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def is_postgres():
    return not is_sqlite()


_second_values = {}


def us_from_db(value):
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


def remember_second(text):
    if len(_second_values) > 4096:
        _second_values.clear()
    value = _second_values[text] = to_us(datetime.fromisoformat(text))
    return value


def column(name, is_time):
    """A column to select; on SQLite a time comes as its stored text (CAST): the
    driver's datetime converter per value costs more than us_from_db reading it."""
    if is_time and is_sqlite():
        return f"CAST({quote(name)} AS TEXT)"
    return quote(name)


def marks(count):
    return ", ".join(["%s"] * count)
