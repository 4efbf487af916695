"""Objects between the store and a backup directory, streamed and verified both ways.

Backup: :class:`ObjectCopier` copies objects into ``DIR/objects/<key>`` on a few threads (an S3
GET is mostly waiting), each streamed in chunks through SHA-256 and compared with the size and
digest the index records for it before the file takes its name; ``objects.jsonl`` lists what
was copied. Restore: :func:`verify_files` hashes every file against that list before anything
is written, and :func:`upload` hashes again while it streams each file into the store, failing
the ``put`` (so nothing is stored under the key) when the bytes are not the ones listed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, cast

from pacs_common.storage.base import ObjectNotFound, ObjectStore, StoreError, check_key

from pacs_api.backup.manifest import (
    OBJECTS_DIR,
    OBJECTS_LIST,
    BackupError,
    HashingWriter,
    ObjectsFile,
    fsync_directory,
    hash_file,
)

Progress = Callable[[str], None]
#: Objects copied or uploaded at once.
THREADS = 8
#: Progress is told every this many objects.
REPORT_EVERY = 1000


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    """One object of a backup, as ``objects.jsonl`` lists it."""

    key: str
    size: int
    sha256: str


class ObjectCopier:
    """Copies objects from *store* into the backup *directory*; use as a context manager (an
    exception inside it stops the copies still waiting)."""

    def __init__(self, store: ObjectStore, directory: Path, progress: Progress, threads: int):
        self._store = store
        self._root = directory / OBJECTS_DIR
        self._root.mkdir()
        self._list = HashingWriter(directory / OBJECTS_LIST)
        self._progress = progress
        self._pool = ThreadPoolExecutor(threads, "pacs-backup-copy")
        self._in_flight = threading.BoundedSemaphore(threads * 4)
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._directories: set[Path] = {self._root}
        self._failure: BaseException | None = None
        self.count = 0
        self.bytes = 0

    def __enter__(self) -> ObjectCopier:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._list.close()

    def copy(self, key: str, *, size: int | None = None, sha256: str | None = None) -> None:
        """Copy the object *key* (once, however often it is asked for), checking the *size* and
        *sha256* the index records when given; raises the first failure of an earlier copy."""
        self._raise_failure()
        if key in self._seen:
            return
        try:
            check_key(key)
        except ValueError as exc:
            raise BackupError(f"the index references an invalid object key: {exc}") from exc
        self._seen.add(key)
        self._in_flight.acquire()
        future = self._pool.submit(self._copy, key, size, sha256)
        future.add_done_callback(self._done)

    def finish(self) -> ObjectsFile:
        """Wait for every copy; make the files durable; what ``objects.jsonl`` holds."""
        self._pool.shutdown(wait=True)
        self._raise_failure()
        for directory in sorted(self._directories):
            fsync_directory(directory)
        return ObjectsFile(count=self.count, bytes=self.bytes, sha256=self._list.close())

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _done(self, future: Future[ObjectEntry]) -> None:
        self._in_flight.release()
        failure = future.exception() if not future.cancelled() else None
        with self._lock:
            if failure is not None:
                self._failure = self._failure or failure
                return
            if future.cancelled():
                return
            entry = future.result()
            self._list.write_line({"key": entry.key, "size": entry.size, "sha256": entry.sha256})
            self.count += 1
            self.bytes += entry.size
            if self.count % REPORT_EVERY == 0:
                self._progress(f"copied {self.count} objects ({self.bytes} bytes)")

    def _copy(self, key: str, size: int | None, sha256: str | None) -> ObjectEntry:
        path = self._root / key
        with self._lock:
            for parent in path.relative_to(self._root).parents:
                self._directories.add(self._root / parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.part")
        digest = hashlib.sha256()
        copied = 0
        try:
            with partial.open("wb") as out:
                for chunk in self._store.open(key):
                    out.write(chunk)
                    digest.update(chunk)
                    copied += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        except ObjectNotFound as exc:
            partial.unlink(missing_ok=True)
            raise BackupError(
                f"object {key} of an index row is not in the store: deleted after the snapshot "
                "(run the backup again), or lost (`pacs-api check` lists such rows)"
            ) from exc
        except (StoreError, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise BackupError(f"cannot copy object {key}: {exc}") from exc
        found = digest.hexdigest()
        if (size is not None and copied != size) or (sha256 is not None and found != sha256):
            partial.unlink(missing_ok=True)
            raise BackupError(
                f"object {key} holds {copied} bytes with SHA-256 {found}; its index row records "
                f"{size} bytes with SHA-256 {sha256}: the stored object is damaged"
            )
        os.replace(partial, path)
        return ObjectEntry(key, copied, found)


def read_list(directory: Path) -> Iterator[ObjectEntry]:
    """The entries of ``objects.jsonl`` (its hash is checked by the caller first)."""
    with (directory / OBJECTS_LIST).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                raw = json.loads(line)
                entry = ObjectEntry(str(raw["key"]), int(raw["size"]), str(raw["sha256"]))
                check_key(entry.key)
            except (ValueError, KeyError, TypeError) as exc:
                raise BackupError(f"{OBJECTS_LIST} line {number} is malformed: {exc}") from exc
            yield entry


def verify_files(
    directory: Path, entries: list[ObjectEntry], progress: Progress, threads: int = THREADS
) -> None:
    """Every listed object file is there with its size and SHA-256 (:class:`BackupError`
    naming the first that is not)."""
    root = directory / OBJECTS_DIR

    def check(entry: ObjectEntry) -> str | None:
        path = root / entry.key
        try:
            size, sha256 = hash_file(path)
        except OSError as exc:
            return f"object file {path} cannot be read: {exc}"
        if (size, sha256) != (entry.size, entry.sha256):
            return (
                f"object file {path} holds {size} bytes with SHA-256 {sha256}; the backup "
                f"lists {entry.size} bytes with SHA-256 {entry.sha256}: the backup is damaged"
            )
        return None

    done = 0
    with ThreadPoolExecutor(threads, "pacs-backup-verify") as pool:
        for batch in _batches(entries, REPORT_EVERY):
            for problem in pool.map(check, batch):
                if problem is not None:
                    raise BackupError(problem)
            done += len(batch)
            progress(f"verified {done} of {len(entries)} objects")


def upload(
    store: ObjectStore,
    directory: Path,
    entries: Iterable[ObjectEntry],
    progress: Progress,
    uploaded: list[str],
    threads: int = THREADS,
) -> None:
    """Put every listed object into *store*; the keys stored are appended to *uploaded*, also
    when one fails (for the undo)."""
    root = directory / OBJECTS_DIR

    def put(entry: ObjectEntry) -> None:
        with (root / entry.key).open("rb") as source:
            store.put(entry.key, cast(BinaryIO, _Verifying(source, entry)), entry.size)
        uploaded.append(entry.key)  # atomic in CPython

    done = 0
    with ThreadPoolExecutor(threads, "pacs-restore-put") as pool:
        for batch in _batches(entries, REPORT_EVERY):
            for _ in pool.map(put, batch):
                pass
            done += len(batch)
            progress(f"stored {done} objects")


def _batches(items: Iterable[ObjectEntry], size: int) -> Iterator[list[ObjectEntry]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


class _Verifying:
    """Reads a file for ``put``; the read that completes it fails (and so the ``put`` stores
    nothing) when the bytes are not the ones the backup lists."""

    def __init__(self, source: BinaryIO, entry: ObjectEntry) -> None:
        self._source = source
        self._entry = entry
        self._digest = hashlib.sha256()
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._digest.update(data)
        self._read += len(data)
        if self._read == self._entry.size and self._digest.hexdigest() != self._entry.sha256:
            raise BackupError(f"object file {self._entry.key} changed since it was verified")
        return data
