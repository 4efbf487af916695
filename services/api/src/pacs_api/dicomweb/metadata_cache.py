"""Assembled study and series ``/metadata`` answers, kept per process and keyed by version.

A series' metadata answer (PS3.18 §10.4.1.1.2) is the precomputed DICOM JSON of each of its
instances joined into one array; for a 1,000-instance series that is megabytes assembled from
1,000 index rows. This cache keeps the assembled bytes in memory, keyed by the study or series
UIDs, the service root the BulkDataURIs carry, and the study's or series' metadata version
(:mod:`pacs_api.index.versions`). Each request first reads that version (one indexed lookup),
so a store or delete committed by any worker process or replica is seen at once: the new
version misses, the answer is assembled again, and the stale entry ages out of the LRU.

One cache per :class:`~pacs_api.index.repository.Index` (that is, per application), bounded
in bytes.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable

from pacs_api.index.repository import Index, Scope

#: Bytes of assembled answers one process keeps (a 1,000-instance CT series is ~4 MB).
MAX_BYTES = 256 * 1024 * 1024

_Key = tuple[str, str | None, str, str]


class MetadataCache:
    """A thread-safe LRU of assembled answers, bounded by their total size."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[_Key, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.assembled = 0  # answers assembled from the index (misses), for tests and metrics

    def get_or_assemble(
        self, scope: Scope, version: str, base: str, assemble: Callable[[], bytes]
    ) -> bytes:
        """The answer for *scope* at *version*, assembled by *assemble* on a miss."""
        key: _Key = (scope.study_uid, scope.series_uid, version, base)
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
                return body
        body = assemble()  # outside the lock: other scopes are served meanwhile
        with self._lock:
            self.assembled += 1
            if len(body) <= self.max_bytes and key not in self._entries:
                self._entries[key] = body
                self._bytes += len(body)
                while self._bytes > self.max_bytes:
                    _, evicted = self._entries.popitem(last=False)
                    self._bytes -= len(evicted)
        return body


_CACHES: weakref.WeakKeyDictionary[Index, MetadataCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def cache_for(index: Index) -> MetadataCache:
    """The cache of the application that owns *index*."""
    with _CACHES_LOCK:
        cache = _CACHES.get(index)
        if cache is None:
            cache = _CACHES[index] = MetadataCache()
        return cache
