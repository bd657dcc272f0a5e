"""The database away, as the fault tests make it: never the shared server stopped.

SQLite: another writer holds the test database's write lock (`BEGIN
IMMEDIATE`). PostgreSQL: another connection holds the Message table's `ACCESS
EXCLUSIVE` lock. Either way the tap cannot store a batch until it is let go.
"""

import os
import sqlite3
import threading
from pathlib import Path
from urllib.parse import quote

from django.db import connection

from tests.tracer.tapping import client
from tracer.models import Message
from tracer.tap.spool import Spool

LOCK_S = 10.0


def postgres_connection():
    """A connection of its own to the test database (PostgreSQL), beside Django's."""
    import psycopg

    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings.get("USER") or "postgres",
        password=settings.get("PASSWORD") or None,
        host=settings.get("HOST") or "127.0.0.1",
        port=settings.get("PORT") or 5432,
    )


class DatabaseLock(threading.Thread):
    """Holds a write lock (SQLite) or the Message table's lock (PostgreSQL) for
    `hold_s` seconds, or until let_go()."""

    def __init__(self, hold_s=LOCK_S):
        super().__init__(daemon=True)
        self.hold_s = hold_s
        self.ready = threading.Event()
        self.released = threading.Event()
        self._let_go = threading.Event()
        self.error = None

    def let_go(self):
        self._let_go.set()

    def run(self):
        try:
            if connection.vendor == "sqlite":
                self._sqlite()
            else:
                self._postgres()
        except Exception as error:  # noqa: BLE001 - reported by the test
            self.error = error
            self.ready.set()
        finally:
            self.released.set()

    def _sqlite(self):
        holder = sqlite3.connect(connection.settings_dict["NAME"], timeout=10, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            self.ready.set()
            self._let_go.wait(self.hold_s)
            holder.execute("ROLLBACK")
        finally:
            holder.close()

    def _postgres(self):
        holder = postgres_connection()
        try:
            holder.execute(f'LOCK TABLE "{Message._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
            self.ready.set()
            self._let_go.wait(self.hold_s)
            holder.rollback()
        finally:
            holder.close()


def waiting_in_tap_queue(vhost):
    connection_ = client(vhost)
    try:
        return connection_.channel().queue_declare("warren.tap", passive=True).method.message_count
    finally:
        connection_.close()


def spooled(vhost):
    """Frames the vhost's spool files hold now (read beside the tap, as an indexer would)."""
    folder = Path(os.environ["WARREN_SPOOL_DIR"])
    held = 0
    for path in folder.glob(f"{quote(vhost, safe='')}.*.spool"):
        spool = Spool(path, max_bytes=1 << 40)
        try:
            held += spool.held()[1]
        finally:
            spool.close()
    return held
