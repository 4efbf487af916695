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
from typing import Any, NamedTuple

from pacs_common.changefeed import ChangeKind as ChangeKind
from sqlalchemy import Connection, func, insert, select, text
from sqlmodel import col

from pacs_api.index.models import Change, utcnow

#: Key of the PostgreSQL advisory lock that orders appends (any constant will do).
_APPEND_LOCK = 0x66656564  # "feed"


class Entry(NamedTuple):
    """What the feed says of one instance: its UIDs, and what routing rules match on."""

    study: str
    series: str
    instance: str
    sop_class: str
    modality: str = ""
    #: The AE title the instance came from (PS3.10 table 7.1-1 (0002,0017), else (0002,0016)),
    #: known for stored instances.
    sender_ae: str = ""


def append(connection: Connection, kind: ChangeKind, entries: Iterable[Entry]) -> None:
    """Append one entry per instance; call last, before commit."""
    rows = values(kind, entries)
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
    connection.execute(insert(Change), rows)


def values(kind: ChangeKind, entries: Iterable[Entry]) -> list[dict[str, Any]]:
    """The change rows of *entries*, without their ``seq``."""
    at = utcnow()
    return [
        {
            "kind": kind.value,
            "study_instance_uid": entry.study,
            "series_instance_uid": entry.series,
            "sop_instance_uid": entry.instance,
            "sop_class_uid": entry.sop_class,
            "modality": entry.modality[:16],
            "sender_ae": entry.sender_ae[:16],
            "at": at,
        }
        for entry in entries
    ]


def head(connection: Connection) -> int:
    """The ``seq`` of the newest entry (0 for an empty feed)."""
    return int(connection.execute(select(func.max(col(Change.seq)))).scalar() or 0)


def read(connection: Connection, after: int, limit: int) -> list[dict[str, Any]]:
    """Entries with ``seq`` greater than *after*, oldest first, at most *limit*."""
    statement = select(Change).where(col(Change.seq) > after).order_by(col(Change.seq)).limit(limit)
    return [dict(row) for row in connection.execute(statement).mappings()]
