"""The index database: the engine (:func:`pacs_common.database.make_engine`) and the index's
schema migrations (``migrations/``)."""

from __future__ import annotations

from pathlib import Path

from pacs_common.database import WRITE_OPTION, make_engine
from pacs_common.database import migrate as migrate_schema
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"
#: Key of the PostgreSQL advisory lock that serialises migrations (any constant will do).
_MIGRATION_LOCK = 0x70616373  # "pacs"


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the index schema to the newest migration, or to *revision* (keeps existing data);
    safe to run from every worker and replica at once (:func:`pacs_common.database.migrate`)."""
    migrate_schema(engine, MIGRATIONS, lock_key=_MIGRATION_LOCK, revision=revision)


__all__ = ["MIGRATIONS", "WRITE_OPTION", "make_engine", "migrate"]
