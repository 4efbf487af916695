"""``pacs-api backup``: the index's rows from one snapshot, and the objects they reference.

Order of work:

1. open one read transaction (:func:`~pacs_api.backup.snapshot.read_snapshot`) and read the
   schema revision and every API table in it, in dependency order, each into
   ``tables/<table>.jsonl``; every object a row names (a column ``object_key``; with ``size``
   and ``sha256`` columns, checked against them) is copied while the rows stream;
2. after the snapshot, copy the objects kept outside the instance prefix (``studies/``) that
   no row named: the store's other contents (e.g. a quarantine), listed by prefix. Instance
   objects no row references (left by a crash mid-STOW, :mod:`pacs_api.sweep`) are not copied;
3. write ``manifest.json``, last.

It runs beside a serving API; see :mod:`pacs_api.backup` for what that guarantees. A DELETE of
an instance committed after the snapshot may remove its object before it is copied: the
backup then fails, naming the object, and is simply run again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pacs_common.storage import FilesystemStore, ObjectStore
from sqlalchemy import Connection, Engine, Table, select

from pacs_api.backup.manifest import (
    TABLES_DIR,
    BackupError,
    Column,
    HashingWriter,
    Manifest,
    TableFile,
)
from pacs_api.backup.objects import THREADS, ObjectCopier, Progress
from pacs_api.backup.rows import column_kind, encode
from pacs_api.backup.snapshot import api_tables, read_snapshot, schema_revision
from pacs_api.ingest.pipeline import INSTANCE_PREFIX

#: Rows fetched from the database at once.
FETCH = 1000


def create_backup(
    engine: Engine,
    store: ObjectStore,
    directory: Path,
    *,
    progress: Progress = lambda _: None,
    threads: int = THREADS,
) -> Manifest:
    """Back up the index behind *engine* and the objects in *store* into *directory*, which
    must be new or empty; the manifest written last."""
    _prepare(directory)
    (directory / TABLES_DIR).mkdir()
    with ObjectCopier(store, directory, progress, threads) as copier:
        with read_snapshot(engine) as connection:
            revision = schema_revision(connection)
            tables, skipped = api_tables(connection)
            if skipped:
                progress(f"not the API's, not backed up: {', '.join(skipped)}")
            files = [_dump(connection, table, directory, copier, progress) for table in tables]
        progress("snapshot read; copying the store's other objects")
        for info in store.scan():
            if not info.key.startswith(INSTANCE_PREFIX):
                copier.copy(info.key)
        objects = copier.finish()
    manifest = Manifest(
        created=datetime.now(UTC).isoformat(),
        database_dialect=engine.dialect.name,
        store_kind="filesystem" if isinstance(store, FilesystemStore) else "s3",
        schema_revision=revision,
        tables=files,
        objects=objects,
        skipped_tables=skipped,
    )
    manifest.write(directory)
    return manifest


def _prepare(directory: Path) -> None:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BackupError(f"{directory} exists and is not empty: back up into a new directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)  # patient data: the owner's only
    except OSError as exc:
        raise BackupError(f"cannot create {directory}: {exc}") from exc


def _dump(
    connection: Connection,
    table: Table,
    directory: Path,
    copier: ObjectCopier,
    progress: Progress,
) -> TableFile:
    """Write every row of *table* (in primary key order) and copy the objects rows name."""
    kinds = {column.name: column_kind(column.type) for column in table.columns}
    references = "object_key" in table.c
    writer = HashingWriter(directory / TABLES_DIR / f"{table.name}.jsonl")
    try:
        statement = select(table).order_by(*table.primary_key.columns)
        result = connection.execution_options(yield_per=FETCH).execute(statement)
        try:
            for row in result.mappings():
                writer.write_line({name: encode(kind, row[name]) for name, kind in kinds.items()})
                if references and row["object_key"]:
                    copier.copy(
                        str(row["object_key"]),
                        size=_optional(row, "size"),
                        sha256=row.get("sha256"),
                    )
        finally:
            result.close()  # a server-side cursor on PostgreSQL: closed before the transaction
    finally:
        sha256 = writer.close()
    progress(f"table {table.name}: {writer.lines} rows")
    return TableFile(
        name=table.name,
        rows=writer.lines,
        sha256=sha256,
        columns=[Column(name, kind) for name, kind in kinds.items()],
    )


def _optional(row: Any, name: str) -> int | None:
    value = row.get(name)
    return None if value is None else int(value)
