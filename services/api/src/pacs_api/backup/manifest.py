"""The backup's layout and its manifest: what a backup holds and the hash of every part.

``manifest.json`` is written last, atomically (temporary file, fsync, rename, fsync of the
directory): a directory without it is a backup that did not finish, and restore refuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "pacs-cloud-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TABLES_DIR = "tables"
OBJECTS_DIR = "objects"
OBJECTS_LIST = "objects.jsonl"
_READ = 1024 * 1024


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    #: How values are written (:func:`pacs_api.backup.rows.column_kind`).
    kind: str


@dataclass(frozen=True, slots=True)
class TableFile:
    """One table's rows: ``tables/<name>.jsonl``."""

    name: str
    rows: int
    sha256: str
    columns: list[Column]

    @property
    def path(self) -> str:
        return f"{TABLES_DIR}/{self.name}.jsonl"


@dataclass(frozen=True, slots=True)
class ObjectsFile:
    """The list of objects (``objects.jsonl``) and what it adds up to."""

    count: int
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    created: str
    #: ``sqlite`` or ``postgresql``; ``filesystem`` or ``s3``: where the backup came from.
    database_dialect: str
    store_kind: str
    #: The Alembic revision of the index schema the rows fit.
    schema_revision: str
    #: In dependency order: a table comes after the tables its foreign keys name.
    tables: list[TableFile]
    objects: ObjectsFile
    #: Tables found in the database that are not the API's (another service sharing it).
    skipped_tables: list[str] = field(default_factory=list)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def write(self, directory: Path) -> None:
        """Write ``manifest.json`` atomically and durably: the last step of a backup."""
        final = directory / MANIFEST
        temporary = directory / f".{MANIFEST}.part"
        with temporary.open("w", encoding="utf-8") as out:
            json.dump(asdict(self), out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, final)
        fsync_directory(directory)

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """The manifest of the backup in *directory*; :class:`BackupError` when it is missing
        (an unfinished backup), unreadable, or of another format."""
        path = directory / MANIFEST
        if not directory.is_dir():
            raise BackupError(f"{directory} is not a directory")
        try:
            raw: Any = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise BackupError(
                f"{path} is missing: {directory} is not a backup, or one that did not finish"
            ) from exc
        except (OSError, ValueError) as exc:
            raise BackupError(f"{path} cannot be read: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise BackupError(f"{path} is not a {FORMAT} manifest")
        if raw.get("format_version") != FORMAT_VERSION:
            raise BackupError(
                f"{path} has format version {raw.get('format_version')!r}; this pacs-api reads "
                f"version {FORMAT_VERSION}"
            )
        try:
            return cls(
                created=str(raw["created"]),
                database_dialect=str(raw["database_dialect"]),
                store_kind=str(raw["store_kind"]),
                schema_revision=str(raw["schema_revision"]),
                tables=[
                    TableFile(
                        name=str(table["name"]),
                        rows=int(table["rows"]),
                        sha256=str(table["sha256"]),
                        columns=[Column(str(c["name"]), str(c["kind"])) for c in table["columns"]],
                    )
                    for table in raw["tables"]
                ],
                objects=ObjectsFile(**raw["objects"]),
                skipped_tables=[str(name) for name in raw.get("skipped_tables", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupError(f"{path} is malformed: {exc!r}") from exc


class HashingWriter:
    """A file written line by line, counting lines and hashing bytes as they go."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb")
        self._digest = hashlib.sha256()
        self.lines = 0

    def write_line(self, value: Any) -> None:
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        self._file.write(data)
        self._digest.update(data)
        self.lines += 1

    def close(self) -> str:
        """Flush, fsync and close; the SHA-256 of what was written."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._digest.hexdigest()


def hash_file(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(_READ):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def fsync_directory(path: Path) -> None:
    """Make the entries of *path* (files created or renamed in it) durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
