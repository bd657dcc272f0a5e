"""The Channels groups live events go to: one per stream, per installation."""

import hashlib

from django.db import connection as db_connection


def installation_key() -> str:
    """Eight hex digits naming this installation's database.

    Consoles and taps that share a database share live events; another Warren
    (or a test run) on the same Redis does not see them.
    """
    db = db_connection.settings_dict
    identity = f"{db.get('ENGINE')}|{db.get('HOST')}|{db.get('PORT')}|{db.get('NAME')}"
    return hashlib.blake2b(identity.encode(), digest_size=4).hexdigest()


def group_name(stream: str) -> str:
    return f"warren-live-{stream}.{installation_key()}"
