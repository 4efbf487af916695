"""Relational databases of the services: engine creation and schema migrations.

SQLite is the embedded default and PostgreSQL the scale-out one; both are reached through the
same SQLAlchemy code. SQLite runs in WAL mode with ``synchronous=FULL`` so that a committed row
survives a power loss, not only a process crash, and writers take its write lock when they
begin (see :data:`WRITE_OPTION`). Each service keeps its own Alembic migrations and, when two
share one PostgreSQL database, its own version table.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

#: Execution option marking a write transaction: on SQLite it begins with ``BEGIN IMMEDIATE``,
#: so a transaction that reads and then writes never fails on a snapshot another writer made
#: stale.
WRITE_OPTION = "pacs_write"
#: How long an SQLite connection waits for another's lock before "database is locked".
_SQLITE_BUSY_SECONDS = 30.0


def make_engine(url: str) -> Engine:
    """Create the engine for a database URL (``sqlite:///path`` or ``postgresql://...``).

    ``postgresql://`` URLs are driven by psycopg 3. For SQLite the parent directory is created.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, emit BEGIN (so savepoints and BEGIN IMMEDIATE
    # work: SQLAlchemy's documented pysqlite recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_SECONDS * 1000)}")
    _use_wal(cursor)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch the database file to WAL. Switching takes an exclusive lock, and SQLite does
    not wait for it as it waits for others: when several processes open a new database at
    once (workers starting together), the switch fails with "database is locked" or leaves
    the old mode; it is tried again until the file is in WAL mode or the busy timeout ends."""
    deadline = time.monotonic() + _SQLITE_BUSY_SECONDS
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        else:
            if str(mode).lower() in ("wal", "memory"):
                return
            if time.monotonic() > deadline:
                raise sqlite3.OperationalError(f"the database stays in {mode} journal mode")
        time.sleep(0.02)


def _sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def migrate(
    engine: Engine,
    migrations: Path,
    *,
    lock_key: int,
    version_table: str = "alembic_version",
    revision: str = "head",
) -> None:
    """Bring the schema to the newest migration in *migrations*, or to *revision* (keeps
    existing data).

    Every worker process and replica runs this at start, so concurrent runs are serialised:
    by the advisory lock *lock_key* on PostgreSQL, by SQLite's write lock (``BEGIN
    IMMEDIATE``) on SQLite. The second runner then finds the schema current and does nothing.
    The migration environment (``env.py``) finds the connection in
    ``config.attributes["connection"]`` and the version table in ``["version_table"]``.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations))
    with engine.connect() as plain:
        connection = plain.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
            config.attributes["connection"] = connection
            config.attributes["version_table"] = version_table
            command.upgrade(config, revision)


#: The largest value a 64-bit SQL integer (PostgreSQL BIGINT, SQLite INTEGER) holds: the upper
#: bound of every offset or cursor a client may send, so a larger one is a 4xx, not a driver
#: overflow.
SQL_INTEGER_MAX = 2**63 - 1
