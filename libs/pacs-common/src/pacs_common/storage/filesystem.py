"""Filesystem object store: one file per object under a root directory (the embedded default).

The key ``a/b/c.dcm`` is the file ``ROOT/a/b/c.dcm``. ``put`` writes a temporary file beside the
target, fsyncs it, renames it over the target and fsyncs the directory (and any directory it had
to create), so a reader sees the old object or the new one, never a mix, and an object whose
``put`` returned survives a power cut. Temporary files are named with ``~``, a character keys
cannot hold, so listings skip them, even those a crash left behind.

Files are created with mode 0600 (``mkstemp``): objects are patient data.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat as stat_mode
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pacs_common.storage.base import (
    CHUNK_SIZE,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StoreError,
    check_key,
    check_range,
)

_TEMP_PREFIX = ".~put-"
_TEMP_SUFFIX = ".tmp"
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_MAKE_TEMP_ATTEMPTS = 3

# Opening a key that is missing, or whose path runs through a file or names a directory.
_NOT_FOUND = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


class FilesystemStore(ObjectStore):
    """Objects as files under *root*, which is created when missing."""

    def __init__(self, root: Path) -> None:
        try:
            root.mkdir(parents=True, exist_ok=True)
            self._root = root.resolve(strict=True)
        except OSError as exc:
            raise StoreError(f"cannot create the object store directory {root}: {exc}") from exc

    @property
    def root(self) -> Path:
        """The absolute, resolved root directory."""
        return self._root

    def __repr__(self) -> str:
        return f"FilesystemStore({str(self._root)!r})"

    # -- the contract ---------------------------------------------------------------------------

    def put(self, key: str, data: BinaryIO, length: int) -> None:
        path = self._path(key)
        if length < 0:
            raise ValueError(f"negative length {length} for object {key!r}")
        fd, temp = self._make_temp(path, key)
        try:
            with os.fdopen(fd, "wb") as out:
                _copy_exact(data, out, length, key)
                with _store_errors(f"cannot write object {key!r}"):
                    out.flush()
                    os.fsync(out.fileno())
            with _store_errors(f"cannot write object {key!r}"):
                os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        with _store_errors(f"cannot make object {key!r} durable"):
            _fsync_dir(path.parent)

    def open(self, key: str, byte_range: tuple[int, int] | None = None) -> Iterator[bytes]:
        path = self._path(key)
        checked = check_range(byte_range)
        wanted_start, wanted_end = checked if checked is not None else (0, None)
        try:
            file = open(path, "rb", buffering=0)  # closed by _FileChunks
        except _NOT_FOUND as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StoreError(f"cannot open object {key!r}: {exc}") from exc
        try:
            size = os.fstat(file.fileno()).st_size
            start = min(wanted_start, size)
            end = size if wanted_end is None else min(wanted_end, size)
            file.seek(start)
        except OSError as exc:
            file.close()
            raise StoreError(f"cannot read object {key!r}: {exc}") from exc
        return _FileChunks(file, end - start, key)

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            info = path.stat()
        except _NOT_FOUND as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StoreError(f"cannot stat object {key!r}: {exc}") from exc
        if not stat_mode.S_ISREG(info.st_mode):
            raise ObjectNotFound(key)
        return ObjectInfo(key, info.st_size, _modified(info))

    def delete(self, keys: list[str]) -> None:
        paths = [self._path(key) for key in keys]
        for key, path in zip(keys, paths, strict=True):
            try:
                path.unlink()
            except _NOT_FOUND:
                continue
            except OSError as exc:
                raise StoreError(f"cannot delete object {key!r}: {exc}") from exc
            self._prune(path.parent)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self._walk(self._root, "", prefix)

    def scan(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """:meth:`list`: it already streams, holding one directory's names at a time."""
        return self.list(prefix)

    def ping(self) -> None:
        """Create and remove a temporary file in the root: proves it exists and is writable."""
        try:
            fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=self._root)
            os.close(fd)
            os.unlink(temp)
        except OSError as exc:
            raise StoreError(f"object store directory {self._root} is not writable: {exc}") from exc

    # -- helpers --------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """The file of *key*, refusing unsafe keys and paths that a symlink leads out of root."""
        path = self._root / check_key(key)
        try:
            resolved = path.resolve()
        except OSError as exc:  # a symlink loop
            raise StoreError(f"cannot resolve object {key!r}: {exc}") from exc
        if not resolved.is_relative_to(self._root):
            raise StoreError(f"object {key!r} resolves outside the store root {self._root}")
        return path

    def _make_temp(self, path: Path, key: str) -> tuple[int, str]:
        """Create the temporary file beside *path*, creating its directories first.

        A concurrent ``delete`` may prune a directory between its creation and the creation of
        the temporary file in it; then the directory is created again.
        """
        for _ in range(_MAKE_TEMP_ATTEMPTS):
            self._make_dirs(path.parent, key)
            try:
                return tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=path.parent)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StoreError(f"cannot create a temporary file for {key!r}: {exc}") from exc
        raise StoreError(f"cannot create the directory of {key!r}: it keeps being removed")

    def _make_dirs(self, directory: Path, key: str) -> None:
        """Create *directory* and missing parents under root, fsyncing each new entry."""
        missing: list[Path] = []
        while directory != self._root and not directory.is_dir():
            missing.append(directory)
            directory = directory.parent
        for new in reversed(missing):
            try:
                new.mkdir()
            except FileExistsError as exc:
                if new.is_dir():  # created concurrently
                    continue
                raise StoreError(
                    f"cannot store {key!r}: {new.relative_to(self._root)} is an object, "
                    "so it cannot also be a key prefix"
                ) from exc
            except OSError as exc:
                raise StoreError(f"cannot create the directory of {key!r}: {exc}") from exc
            with _store_errors(f"cannot make the directory of {key!r} durable"):
                _fsync_dir(new.parent)

    def _prune(self, directory: Path) -> None:
        """Remove now-empty directories from *directory* up to (not including) root."""
        while directory != self._root and directory.is_relative_to(self._root):
            try:
                directory.rmdir()
            except OSError:  # not empty, already gone, or anything else: best effort
                return
            directory = directory.parent

    def _walk(self, directory: Path, base: str, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under *directory* (whose keys start with *base*) matching *prefix*, in order.

        Key order is string order of whole keys, so a directory ``a`` sorts as ``a/``: after
        ``a-c`` and ``a.b``, before ``a0``.
        """
        try:
            with os.scandir(directory) as scan:
                entries = [entry for entry in scan if _NAME.match(entry.name)]
        except (FileNotFoundError, NotADirectoryError):  # pruned while we walked
            return
        except OSError as exc:
            raise StoreError(f"cannot list {directory}: {exc}") from exc
        children: list[tuple[str, os.DirEntry[str], bool]] = []
        for entry in entries:
            key = base + entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                key += "/"
                if key.startswith(prefix) or prefix.startswith(key):
                    children.append((key, entry, True))
            elif key.startswith(prefix):
                children.append((key, entry, False))
        children.sort(key=lambda child: child[0])
        for key, entry, is_dir in children:
            if is_dir:
                yield from self._walk(Path(entry.path), key, prefix)
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # deleted while we walked
                continue
            except OSError as exc:
                raise StoreError(f"cannot stat object {key!r}: {exc}") from exc
            if stat_mode.S_ISREG(info.st_mode):
                yield ObjectInfo(key, info.st_size, _modified(info))


class _FileChunks(Iterator[bytes]):
    """Chunks of an open file, up to *remaining* bytes; closes the file when done."""

    def __init__(self, file: io.FileIO, remaining: int, key: str) -> None:
        self._file: io.FileIO | None = file
        self._remaining = remaining
        self._key = key

    def __iter__(self) -> _FileChunks:
        return self

    def __next__(self) -> bytes:
        if self._file is None:
            raise StopIteration
        if self._remaining <= 0:
            self.close()
            raise StopIteration
        try:
            chunk = self._file.read(min(CHUNK_SIZE, self._remaining))
        except OSError as exc:
            self.close()
            raise StoreError(f"cannot read object {self._key!r}: {exc}") from exc
        if not chunk:  # objects are replaced, never truncated: someone edited the file
            self.close()
            raise StoreError(f"object {self._key!r} is shorter than when it was opened")
        self._remaining -= len(chunk)
        return chunk

    def close(self) -> None:
        """Close the file; the iterator then ends."""
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def __del__(self) -> None:
        self.close()


@contextlib.contextmanager
def _store_errors(message: str) -> Iterator[None]:
    """Turn an :class:`OSError` of the store's own files into :class:`StoreError`."""
    try:
        yield
    except OSError as exc:
        raise StoreError(f"{message}: {exc}") from exc


def _copy_exact(data: BinaryIO, out: BinaryIO, length: int, key: str) -> None:
    """Copy exactly *length* bytes; errors reading *data* propagate unchanged."""
    remaining = length
    while remaining > 0:
        chunk = data.read(min(CHUNK_SIZE, remaining))
        if not chunk:
            raise ValueError(
                f"stream for object {key!r} ended after {length - remaining} of {length} bytes"
            )
        if len(chunk) > remaining:
            raise ValueError(f"stream for object {key!r} returned more bytes than asked for")
        with _store_errors(f"cannot write object {key!r}"):
            out.write(chunk)
        remaining -= len(chunk)


def _fsync_dir(directory: Path) -> None:
    """Make the entries of *directory* (a rename, a new file or directory) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _modified(info: os.stat_result) -> datetime:
    return datetime.fromtimestamp(info.st_mtime, UTC)
