"""One consistent view of the index, and which of its tables are the API's.

:func:`read_snapshot` opens a single read-only transaction; everything read in it is the index
as of one commit, however many STOWs and DELETEs commit meanwhile:

- PostgreSQL: ``REPEATABLE READ READ ONLY`` (PostgreSQL documentation, "Transaction
  Isolation", 13.2.2: every statement sees the snapshot taken at the transaction's first
  statement);
- SQLite in WAL mode: a read transaction (``BEGIN``) sees the database as of its first read
  until it ends, while writers go on appending to the WAL (sqlite.org/wal.html, "Concurrency").
  The WAL cannot be checkpointed past that point while the backup reads, so it grows by what is
  written meanwhile and shrinks at the next checkpoint.

Tables are found by reflection, so the rows are read with the columns the database has at its
revision; the set is the tables the API declares (every SQLModel table of the application,
:func:`declared_table_names`) that exist in the database. Tables of other services sharing a
PostgreSQL database are left out and named in the manifest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, MetaData, Table, inspect, text
from sqlmodel import SQLModel

from pacs_api.backup.manifest import BackupError

#: The API's Alembic version table (:func:`pacs_api.index.db.migrate`).
VERSION_TABLE = "alembic_version"


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection inside one read-only transaction, which ends afterwards."""
    with engine.connect() as plain:
        connection = plain
        if plain.dialect.name == "postgresql":
            connection = plain.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with connection.begin():
            if connection.dialect.name == "sqlite":
                # The snapshot starts at the first read: take it now, before anything else.
                connection.execute(text("SELECT 1 FROM sqlite_master LIMIT 1")).all()
            yield connection


def declared_table_names() -> set[str]:
    """Every table the API application declares (its SQLModel tables)."""
    import pacs_api.main  # noqa: F401  (imports every module that declares a table)

    return set(SQLModel.metadata.tables)


def schema_revision(connection: Connection) -> str:
    """The index schema's Alembic revision; :class:`BackupError` when it has none."""
    if not inspect(connection).has_table(VERSION_TABLE):
        raise BackupError("the index has no schema (never migrated): there is nothing to back up")
    heads = [str(v) for v in connection.scalars(text(f"SELECT version_num FROM {VERSION_TABLE}"))]
    if len(heads) != 1:
        raise BackupError(f"the index schema has {len(heads)} Alembic revisions {heads}; need one")
    return heads[0]


def api_tables(connection: Connection) -> tuple[list[Table], list[str]]:
    """The API's tables in *connection*'s database, reflected, parents before children; and the
    names of the other tables there (another service's), which are not the API's to back up."""
    present = set(inspect(connection).get_table_names()) - {VERSION_TABLE}
    ours = present & declared_table_names()
    metadata = MetaData()
    metadata.reflect(connection, only=sorted(ours))
    return list(metadata.sorted_tables), sorted(present - ours)
