"""The ordered change feed: every instance stored or deleted, in commit order.

Entries are appended in the same transaction as the index change they describe, so the feed
never announces an instance that is not committed, nor misses one that is. On PostgreSQL,
sequence values are handed out when rows are inserted but become visible when transactions
commit, so a reader could see ``seq`` 12 before 11 commits and skip 11 forever; writers
therefore take a transaction-level advisory lock just before appending (held until their
commit, a few milliseconds), which makes ``seq`` order commit order. SQLite has one writer at a
time already.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, select, text
from sqlmodel import col

from pacs_api.index.models import Change, utcnow

#: Key of the PostgreSQL advisory lock that orders appends (any constant will do).
_APPEND_LOCK = 0x66656564  # "feed"


class ChangeKind(StrEnum):
    STORED = "stored"  # a new instance, or new bytes for one (overwrite policy)
    DELETED = "deleted"


def append(
    connection: Connection, kind: ChangeKind, instances: Iterable[tuple[str, str, str, str]]
) -> None:
    """Append ``(study, series, sop instance, sop class)`` UIDs; call last, before commit."""
    rows = [
        {
            "kind": kind.value,
            "study_instance_uid": study,
            "series_instance_uid": series,
            "sop_instance_uid": sop,
            "sop_class_uid": sop_class,
            "at": utcnow(),
        }
        for study, series, sop, sop_class in instances
    ]
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
    connection.execute(insert(Change), rows)


def read(connection: Connection, after: int, limit: int) -> list[dict[str, Any]]:
    """Entries with ``seq`` greater than *after*, oldest first, at most *limit*."""
    statement = select(Change).where(col(Change.seq) > after).order_by(col(Change.seq)).limit(limit)
    return [dict(row) for row in connection.execute(statement).mappings()]
