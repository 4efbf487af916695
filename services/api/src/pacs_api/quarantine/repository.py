"""The quarantine's rows (:class:`.models.QuarantineEntry`): the only SQL of the quarantine.

Each method opens and closes its own session, so one repository is safe to share between
threads, like :class:`pacs_api.index.repository.Index`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from pacs_api.index.db import WRITE_OPTION
from pacs_api.quarantine.models import QuarantineEntry, utcnow


class DigestCollision(RuntimeError):
    """Two different objects whose SHA-256 share the 16 hex digits of an entry id."""


class QuarantineRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self, *, write: bool = False) -> Session:
        session = Session(self.engine, expire_on_commit=False)
        if write:
            session.connection(execution_options={WRITE_OPTION: True})
        return session

    def touch(
        self, entry_id: str, sha256: str, at: datetime | None = None
    ) -> QuarantineEntry | None:
        """The entry of these bytes received once more (count and time moved on), or None
        when there is none."""
        with self._session(write=True) as session:
            entry = session.get(QuarantineEntry, entry_id)
            if entry is None:
                return None
            if entry.sha256 != sha256:
                raise DigestCollision(f"quarantine entry {entry_id} holds other bytes")
            session.execute(
                update(QuarantineEntry)
                .where(col(QuarantineEntry.id) == entry_id)
                .values(
                    times_received=col(QuarantineEntry.times_received) + 1,
                    last_received_at=at or utcnow(),
                )
            )
            session.commit()
            session.refresh(entry)
            return entry

    def add(self, entry: QuarantineEntry) -> QuarantineEntry:
        """Insert *entry*; when another request inserted the same bytes first, count this one
        on that entry instead."""
        try:
            with self._session(write=True) as session:
                session.add(entry)
                session.commit()
                return entry
        except IntegrityError:
            touched = self.touch(entry.id, entry.sha256, entry.last_received_at)
            if touched is None:
                raise
            return touched

    def get(self, entry_id: str) -> QuarantineEntry | None:
        with self._session() as session:
            return session.get(QuarantineEntry, entry_id)

    def page(self, offset: int, limit: int) -> tuple[list[QuarantineEntry], int]:
        """Entries, last received first, and how many there are in all."""
        with self._session() as session:
            total = session.execute(select(func.count()).select_from(QuarantineEntry)).scalar()
            rows = session.execute(
                select(QuarantineEntry)
                .order_by(col(QuarantineEntry.last_received_at).desc(), col(QuarantineEntry.id))
                .offset(offset)
                .limit(limit)
            ).scalars()
            return list(rows), int(total or 0)

    def count(self) -> int:
        """How many entries the quarantine holds."""
        with self._session() as session:
            total = session.execute(select(func.count()).select_from(QuarantineEntry)).scalar()
            return int(total or 0)

    def remove(self, entry_id: str) -> bool:
        with self._session(write=True) as session:
            result = session.connection().execute(
                delete(QuarantineEntry).where(col(QuarantineEntry.id) == entry_id)
            )
            session.commit()
            return bool(result.rowcount)
