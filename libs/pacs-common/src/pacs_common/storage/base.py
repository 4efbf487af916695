"""The object store contract.

Two backends implement it: :class:`~pacs_common.storage.filesystem.FilesystemStore` (the embedded
default) and :class:`~pacs_common.storage.s3.S3Store` (any S3-compatible server, through the
``minio`` SDK). The same contract test suite runs on both.

Guarantees every backend gives:
- ``put`` is atomic: a reader sees the whole new object or nothing (filesystem: temp file, fsync,
  rename; S3: a single PUT or a completed multipart upload). When ``put`` returns, the object is
  durable.
- ``open`` streams; a ``byte_range`` reads part of an object without reading the rest.
- Keys are ``/``-separated relative paths of safe characters, checked by :func:`check_key`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

_KEY = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
CHUNK_SIZE = 1024 * 1024


class StoreError(Exception):
    """The object store failed or cannot be reached (a 503 to clients)."""


class ObjectNotFound(StoreError):
    """No object under that key."""


def check_key(key: str) -> str:
    """Return *key* when it is a safe relative key (no ``..``, no empty or absolute parts)."""
    if not _KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"unsafe object key {key!r}")
    return key


def check_range(byte_range: tuple[int, int] | None) -> tuple[int, int] | None:
    """Return *byte_range* when it is a valid ``(start, end)`` pair: ``0 <= start <= end``."""
    if byte_range is None:
        return None
    start, end = byte_range
    if start < 0 or end < start:
        raise ValueError(f"invalid byte range {byte_range!r}: need 0 <= start <= end")
    return start, end


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """An object's key and size, and when it was last written (``None`` when the backend did
    not say; not part of equality: two listings of one object compare equal)."""

    key: str
    size: int
    modified: datetime | None = field(default=None, compare=False)


class ObjectStore(ABC):
    """Durable, atomic storage of immutable objects under string keys."""

    #: Objects worth fetching ahead when many are read in order (0: read them in turn). A
    #: network store waits on every request; a local disk does not.
    read_ahead: int = 0

    @abstractmethod
    def put(self, key: str, data: BinaryIO, length: int) -> None:
        """Store *length* bytes read from *data* (positioned at its start) under *key*, atomically
        and durably, replacing any object already there.

        Exactly *length* bytes are read; bytes after them are left unread. A stream that ends
        early raises :class:`ValueError` and stores nothing (a previous object stays intact), as
        do a negative *length* and an unsafe key. Exceptions raised by *data* itself propagate
        unchanged; only failures of the store raise :class:`StoreError`."""

    @abstractmethod
    def open(self, key: str, byte_range: tuple[int, int] | None = None) -> Iterator[bytes]:
        """Stream an object in chunks; *byte_range* is ``(start, end)``, end exclusive.

        Raises :class:`ObjectNotFound` before yielding anything when the key is absent. A range
        is clamped to the object's size (a range starting at or past the end yields nothing);
        ``start > end`` or a negative start raises :class:`ValueError`. Chunks are at most
        :data:`CHUNK_SIZE` bytes. The iterator has a ``close()`` that releases the file or
        connection early; an abandoned iterator releases it when garbage-collected."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size of an object; :class:`ObjectNotFound` when absent."""

    @abstractmethod
    def delete(self, keys: list[str]) -> None:
        """Delete objects; keys that are absent are ignored.

        Every key is checked before anything is deleted."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with *prefix*, in key order.

        *prefix* is a plain string (``"studies/1.2"`` matches ``studies/1.2.3/...``). Names in
        the store that are not valid keys (temporary files, foreign objects) are not listed."""

    def scan(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with *prefix*, with ``modified`` set, in no stated
        order, streamed: memory stays bounded however many objects there are (a sweep of the
        whole store). The default is :meth:`list`."""
        return self.list(prefix)

    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`StoreError` when the store cannot be reached (readiness)."""

    def read(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        """Read an object (or a range of it) whole; for small objects only."""
        return b"".join(self.open(key, byte_range))

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has nothing to release."""
