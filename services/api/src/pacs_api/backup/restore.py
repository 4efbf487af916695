"""``pacs-api restore``: a backup into an empty system, checked whole before anything is written.

Order of work:

1. refuse a target that is not empty: rows in any of the backup's tables, or any object in the
   store (a restore never merges into, nor overwrites, a live archive);
2. verify the backup (:func:`verify_backup`): the manifest, the SHA-256 and line count of every
   table file and of ``objects.jsonl``, every row's columns, every object a row names being in
   the backup with the digest the row records, and the size and SHA-256 of every object file;
   and that this pacs-api knows the backup's schema revision;
3. migrate the target's schema to the backup's revision;
4. put the objects into the store (each hashed again as it streams);
5. insert the rows in one transaction, table by table in dependency order, keeping their
   primary keys (so references between rows, and the change feed's ``seq``, are the same); on
   PostgreSQL, move every sequence past the largest value restored, so that new rows (the next
   STOW's change feed entries) continue after the old ones;
6. migrate the schema to this pacs-api's newest revision.

Steps 1-2 write nothing; a failure in 4-5 removes the objects stored so far and rolls the rows
back, leaving the target empty again (its schema migrated) for another try.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from pacs_common.storage import ObjectStore, StoreError
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Table,
    insert,
    inspect,
    literal_column,
    select,
    text,
)
from sqlalchemy import table as table_clause

from pacs_api.backup.manifest import (
    OBJECTS_LIST,
    BackupError,
    Manifest,
    TableFile,
)
from pacs_api.backup.objects import THREADS, ObjectEntry, Progress, read_list, upload, verify_files
from pacs_api.backup.rows import KINDS, decode
from pacs_api.backup.snapshot import VERSION_TABLE, api_tables
from pacs_api.index.db import MIGRATIONS, WRITE_OPTION, migrate

#: Rows inserted per statement.
BATCH = 1000
_READ = 1024 * 1024


@dataclass(frozen=True, slots=True)
class VerifiedBackup:
    manifest: Manifest
    objects: list[ObjectEntry]


def verify_backup(directory: Path, *, progress: Progress = lambda _: None) -> VerifiedBackup:
    """Check every part of the backup in *directory* against its manifest (step 2 above);
    :class:`BackupError` naming the first fault."""
    manifest = Manifest.read(directory)
    _check_revision(manifest.schema_revision)
    listed = directory / OBJECTS_LIST
    _check_file(listed, manifest.objects.sha256, OBJECTS_LIST)
    objects = list(read_list(directory))
    if (len(objects), sum(o.size for o in objects)) != (
        manifest.objects.count,
        manifest.objects.bytes,
    ):
        raise BackupError(f"{OBJECTS_LIST} does not list the objects the manifest counts")
    by_key = {entry.key: entry for entry in objects}
    for table in manifest.tables:
        _verify_table(directory, table, by_key)
        progress(f"verified table {table.name}: {table.rows} rows")
    verify_files(directory, objects, progress)
    progress(f"verified {len(objects)} objects ({manifest.objects.bytes} bytes)")
    return VerifiedBackup(manifest, objects)


def restore_backup(
    engine: Engine,
    store: ObjectStore,
    directory: Path,
    *,
    progress: Progress = lambda _: None,
    threads: int = THREADS,
) -> Manifest:
    """Restore the backup in *directory* into the empty index behind *engine* and the empty
    *store* (see the module docstring)."""
    manifest = Manifest.read(directory)
    _check_empty(engine, store, manifest)
    verified = verify_backup(directory, progress=progress)
    _check_target_revision(engine, manifest.schema_revision)
    migrate(engine, manifest.schema_revision)
    tables = _target_tables(engine, manifest)
    uploaded: list[str] = []
    try:
        upload(store, directory, verified.objects, progress, uploaded, threads)
        _insert(engine, tables, manifest, directory, progress)
    except BaseException:
        _undo(store, uploaded, progress)
        raise
    migrate(engine)
    return manifest


# -- verification ---------------------------------------------------------------------------
def _revisions() -> list[str]:
    """This pacs-api's index schema revisions, newest first."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return [script.revision for script in ScriptDirectory.from_config(config).walk_revisions()]


def _check_revision(revision: str) -> None:
    if revision not in _revisions():
        raise BackupError(
            f"the backup's schema revision {revision!r} is unknown to this pacs-api (a backup "
            "made by a newer version?): restore it with that version or a newer one"
        )


def _check_file(path: Path, sha256: str, name: str) -> None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as source:
            while chunk := source.read(_READ):
                digest.update(chunk)
    except OSError as exc:
        raise BackupError(f"{name} cannot be read: {exc}") from exc
    if digest.hexdigest() != sha256:
        raise BackupError(f"{name} does not match the manifest's SHA-256: the backup is damaged")


def _verify_table(directory: Path, table: TableFile, objects: dict[str, ObjectEntry]) -> None:
    """The file's hash and row count; each row's columns; each object a row names."""
    unknown = {column.kind for column in table.columns} - KINDS
    if unknown:
        raise BackupError(f"table {table.name}: unknown column kinds {sorted(unknown)}")
    _check_file(directory / table.path, table.sha256, table.path)
    names = {column.name for column in table.columns}
    rows = 0
    for rows, row in enumerate(_rows(directory, table), 1):
        if set(row) != names:
            raise BackupError(f"{table.path} row {rows} has columns {sorted(row)}, not {names}")
        key = row.get("object_key")
        if key:
            entry = objects.get(key)
            if entry is None:
                raise BackupError(f"{table.path} row {rows} names object {key}, not in the backup")
            if row.get("sha256") not in (None, entry.sha256):
                raise BackupError(f"{table.path} row {rows}: object {key} has another SHA-256")
    if rows != table.rows:
        raise BackupError(f"{table.path} holds {rows} rows; the manifest counts {table.rows}")


def _rows(directory: Path, table: TableFile) -> Iterator[dict[str, Any]]:
    with (directory / table.path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise BackupError(f"{table.path} line {number} is not JSON: {exc}") from exc
            if not isinstance(row, dict):
                raise BackupError(f"{table.path} line {number} is not a JSON object")
            yield row


# -- the target -----------------------------------------------------------------------------
def _check_empty(engine: Engine, store: ObjectStore, manifest: Manifest) -> None:
    """Refuse a target whose index has rows in the backup's tables or whose store has objects."""
    with engine.connect() as connection:
        present = set(inspect(connection).get_table_names())
        for table in manifest.tables:
            if table.name not in present:
                continue
            rows: Select[tuple[Any]] = select(literal_column("1")).select_from(
                table_clause(table.name)
            )
            if connection.execute(rows.limit(1)).first() is not None:
                raise BackupError(
                    f"the target index is not empty (table {table.name} has rows): restore only "
                    "into an empty system (a new database and an empty store)"
                )
    try:
        first = next(iter(store.list()), None)
    except StoreError as exc:
        raise BackupError(f"cannot list the target store: {exc}") from exc
    if first is not None:
        raise BackupError(
            f"the target store is not empty (it holds {first.key}): restore only into an empty "
            "system (a new database and an empty store)"
        )


def _check_target_revision(engine: Engine, revision: str) -> None:
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return
        current = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    order = _revisions()
    if current is not None and current in order and order.index(current) < order.index(revision):
        raise BackupError(
            f"the target index's schema is at revision {current}, newer than the backup's "
            f"{revision}: restore into a new database, never migrated (the restore migrates it)"
        )


def _target_tables(engine: Engine, manifest: Manifest) -> list[Table]:
    """The target's tables for the backup's, in the target's dependency order, with the same
    columns (:class:`BackupError` otherwise)."""
    with engine.connect() as connection:
        tables, _ = api_tables(connection)
    by_name = {table.name: table for table in tables}
    for file in manifest.tables:
        table = by_name.get(file.name)
        if table is None:
            raise BackupError(f"table {file.name} of the backup is not in the migrated schema")
        theirs = {column.name for column in file.columns}
        ours = {column.name for column in table.columns}
        if theirs != ours:
            raise BackupError(
                f"table {file.name}: the backup has columns {sorted(theirs)}, the schema at "
                f"revision {manifest.schema_revision} has {sorted(ours)}"
            )
    wanted = {file.name for file in manifest.tables}
    return [table for table in tables if table.name in wanted]


def _insert(
    engine: Engine, tables: list[Table], manifest: Manifest, directory: Path, progress: Progress
) -> None:
    files = {file.name: file for file in manifest.tables}
    with engine.connect() as plain:
        connection = plain.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            for table in tables:
                file = files[table.name]
                kinds = {column.name: column.kind for column in file.columns}
                batch: list[dict[str, Any]] = []
                for row in _rows(directory, file):
                    batch.append(
                        {
                            name: decode(kinds[name], v, table.c[name].type)
                            for name, v in row.items()
                        }
                    )
                    if len(batch) == BATCH:
                        connection.execute(insert(table), batch)
                        batch = []
                if batch:
                    connection.execute(insert(table), batch)
                progress(f"restored table {table.name}: {file.rows} rows")
            if connection.dialect.name == "postgresql":
                _advance_sequences(connection, tables)


def _advance_sequences(connection: Connection, tables: list[Table]) -> None:
    """Set every sequence owned by a restored column (serial or identity) so that its next
    value follows the largest restored one (PostgreSQL documentation, "Sequence Manipulation
    Functions": ``setval(seq, n, false)`` makes ``n`` the next value)."""
    preparer = connection.dialect.identifier_preparer
    for table in tables:
        for column in table.columns:
            sequence = connection.execute(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": preparer.quote(table.name), "column": column.name},
            ).scalar()
            if sequence is None:
                continue
            largest = f"SELECT MAX({preparer.quote(column.name)}) FROM {preparer.quote(table.name)}"
            connection.execute(
                text(f"SELECT setval(:sequence, COALESCE(({largest}), 0) + 1, false)"),
                {"sequence": sequence},
            )


def _undo(store: ObjectStore, uploaded: list[str], progress: Progress) -> None:
    """Remove the objects a failed restore stored, so the target is empty again."""
    if not uploaded:
        return
    try:
        for start in range(0, len(uploaded), BATCH):
            store.delete(uploaded[start : start + BATCH])
    except StoreError as exc:
        progress(f"could not remove the {len(uploaded)} objects stored before the failure: {exc}")
        return
    progress(f"removed the {len(uploaded)} objects stored before the failure")
