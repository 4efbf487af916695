"""The object store contract.

Two backends implement it: :class:`~pacs_api.storage.filesystem.FilesystemStore` (the embedded
default) and :class:`~pacs_api.storage.s3.S3Store` (any S3-compatible server, through the
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
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int


class ObjectStore(ABC):
    """Durable, atomic storage of immutable objects under string keys."""

    @abstractmethod
    def put(self, key: str, data: BinaryIO, length: int) -> None:
        """Store *length* bytes read from *data* (positioned at its start) under *key*, atomically
        and durably, replacing any object already there."""

    @abstractmethod
    def open(self, key: str, byte_range: tuple[int, int] | None = None) -> Iterator[bytes]:
        """Stream an object in chunks; *byte_range* is ``(start, end)``, end exclusive.

        Raises :class:`ObjectNotFound` before yielding anything when the key is absent."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size of an object; :class:`ObjectNotFound` when absent."""

    @abstractmethod
    def delete(self, keys: list[str]) -> None:
        """Delete objects; keys that are absent are ignored."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with *prefix*, in key order."""

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
