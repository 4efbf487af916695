"""Reading many objects in order, with the next few fetched while the current one is sent
(for stores whose :attr:`~pacs_common.storage.base.ObjectStore.read_ahead` asks for it).

A WADO-RS series retrieve reads hundreds of objects one after another; on S3 each GET is
mostly waiting (measured on SeaweedFS: ~2.3 ms for a 512 KiB object), so reading them in turn
caps a series retrieve (measured: 191 MB/s in turn, ~300 MB/s with four in flight, the store's
own limit on this 2-core machine). On a local disk reading ahead only adds copies (6.7 GB/s in
turn, 1.4 GB/s ahead), so the filesystem store reads in turn.
:func:`read_ahead` keeps up to *window* whole objects in flight in worker threads; objects
larger than *whole_limit* are streamed in their turn instead, so memory stays bounded by
``window * whole_limit``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from pacs_common.storage.base import ObjectStore

WINDOW = 4
WHOLE_LIMIT = 16 * 1024 * 1024


def read_ahead(
    store: ObjectStore,
    objects: Sequence[tuple[str, int]],
    *,
    window: int = WINDOW,
    whole_limit: int = WHOLE_LIMIT,
) -> Iterator[Iterator[bytes]]:
    """For each ``(key, size)`` in order, an iterator over that object's bytes.

    Store errors surface when the object's turn comes. Leaving the loop early cancels what
    was not started and waits for what was (no thread outlives the generator).
    """
    with ThreadPoolExecutor(window, "pacs-read-ahead") as pool:
        ahead: deque[Future[bytes] | None] = deque()
        upcoming = iter(objects)

        def refill() -> None:
            while len(ahead) < window:
                try:
                    key, size = next(upcoming)
                except StopIteration:
                    return
                ahead.append(pool.submit(store.read, key) if size <= whole_limit else None)

        try:
            for key, _size in objects:
                refill()
                fetched = ahead.popleft()
                if fetched is None:
                    yield store.open(key)
                else:
                    yield iter((fetched.result(),))
        finally:
            for future in ahead:
                if future is not None:
                    future.cancel()
