"""Metadata versions: a token per study and per series that changes with their instances.

Every transaction that stores, replaces or deletes instances sets a new random token on each
series it touched and on those series' studies, in the same transaction. A cache of assembled
``/metadata`` answers (:mod:`pacs_api.dicomweb.metadata_cache`) keys each answer by the token
it read, so any worker process or replica that commits a change makes every cached copy
unreachable at once, with no message between processes. Random tokens, not counters: a series
deleted and stored again under the same UID never repeats an earlier token, and setting one
needs no read.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import Connection, select, update
from sqlmodel import col

from pacs_api.index.models import Series, Study


def new_token() -> str:
    return uuid.uuid4().hex


def bump(connection: Connection, series_pks: Collection[int]) -> set[int]:
    """Give *series_pks* and their studies a new metadata version (before commit); return
    the studies' keys. The updates lock those rows until commit (PostgreSQL), which the
    recount of :func:`pacs_api.index.counts.refresh` relies on."""
    if not series_pks:
        return set()
    token = new_token()
    keys = sorted(series_pks)  # one lock order for every writer (PostgreSQL row locks)
    study_pks = sorted(
        set(
            connection.execute(
                select(col(Series.study_fk)).where(col(Series.pk).in_(keys))
            ).scalars()
        )
    )
    connection.execute(
        update(Series).where(col(Series.pk).in_(keys)).values(metadata_version=token)
    )
    if study_pks:
        connection.execute(
            update(Study).where(col(Study.pk).in_(study_pks)).values(metadata_version=token)
        )
    return set(study_pks)
