"""Read-ahead of objects for series retrieval: order kept, memory bounded, errors in turn."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pacs_common.storage.base import ObjectNotFound
from pacs_common.storage.filesystem import FilesystemStore
from pacs_common.storage.readahead import read_ahead


def _store(tmp_path: Path, sizes: list[int]) -> tuple[FilesystemStore, list[tuple[str, int]]]:
    store = FilesystemStore(tmp_path / "objects")
    objects = []
    for n, size in enumerate(sizes):
        key = f"o/{n:03d}.bin"
        store.put(key, io.BytesIO(bytes([n % 251]) * size), size)
        objects.append((key, size))
    return store, objects


def test_read_ahead_keeps_order_and_bytes(tmp_path: Path) -> None:
    """Every object comes back whole and in the order asked, small and large alike."""
    store, objects = _store(tmp_path, [10, 0, 3000, 70_000, 5, 1, 2, 9])
    got = [b"".join(chunks) for chunks in read_ahead(store, objects, window=3, whole_limit=4096)]
    assert got == [store.read(key) for key, _ in objects]


def test_read_ahead_missing_object_raises_in_its_turn(tmp_path: Path) -> None:
    """A missing object fails when its turn comes, after the ones before it were served."""
    store, objects = _store(tmp_path, [4, 4, 4])
    objects.insert(2, ("o/missing.bin", 4))
    served = read_ahead(store, objects, window=4)
    assert b"".join(next(served)) == store.read(objects[0][0])
    assert b"".join(next(served)) == store.read(objects[1][0])
    with pytest.raises(ObjectNotFound):
        b"".join(next(served))


def test_read_ahead_abandoned_early_stops_cleanly(tmp_path: Path) -> None:
    """Leaving the loop early ends the generator and its threads (no error, no leak)."""
    store, objects = _store(tmp_path, [100] * 20)
    served = read_ahead(store, objects, window=4)
    assert b"".join(next(served)) == store.read(objects[0][0])
    served.close()
