"""tracer.tap.gaps: a gap the database refuses is kept, and written once it answers."""

import sqlite3
from contextlib import contextmanager

import pytest
from django.db import connection

from tests.faults.outage import postgres_connection
from tracer.models import TapGap
from tracer.tap.gaps import OVERFLOW, Gaps

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def _gaps_refused():
    """TapGap cannot be written: the SQLite file's write lock, or the table's
    lock on PostgreSQL, held from another connection; the tap's side waits
    0.5 s for it, not the configured 20 s or 5 s."""
    settings = connection.settings_dict
    options = dict(settings["OPTIONS"])
    if connection.vendor == "sqlite":
        holder = sqlite3.connect(settings["NAME"], timeout=10, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        settings["OPTIONS"]["timeout"] = 0.5
    else:
        holder = postgres_connection()
        holder.execute(f'LOCK TABLE "{TapGap._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
        settings["OPTIONS"]["options"] = "-c lock_timeout=500"
    connection.close()
    try:
        yield
    finally:
        holder.rollback()
        holder.close()
        settings["OPTIONS"] = options
        connection.close()


def test_it_keeps_gaps_the_database_refuses_and_writes_them_in_order_when_it_answers():
    problems: dict[str, str] = {}
    gaps = Gaps(problems)
    gaps.record("v", 1_700_000_000_000_000, 1_700_000_001_000_000, 0, "spool full")
    with _gaps_refused():
        gaps.record("v", 1_700_000_002_000_000, 1_700_000_003_000_000, 0, "connection lost")
        gaps.overflow("v", 1_700_000_004_000_000, 7)
        gaps.overflow("v", 1_700_000_005_000_000, 5)
        assert len(gaps.due) == 3  # nothing raised, nothing lost
        assert "3 gaps wait to be recorded" in problems["gaps"]
    assert gaps.write()
    assert not gaps.due and "gaps" not in problems
    rows = list(TapGap.objects.order_by("started_at").values_list("reason", "dropped"))
    assert rows == [("spool full", 0), ("connection lost", 0), (OVERFLOW, 7), (OVERFLOW, 5)]
    # Once written, drops close to the last extend its gap.
    gaps.overflow("v", 1_700_000_006_000_000, 2)
    assert TapGap.objects.count() == 4
    assert TapGap.objects.filter(reason=OVERFLOW).order_by("-ended_at")[0].dropped == 5 + 2
