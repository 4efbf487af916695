"""Reading many objects in order, with the next few fetched while the current one is sent.

A WADO-RS series retrieve reads hundreds of objects one after another; on S3 each GET is
mostly waiting (measured on SeaweedFS: ~2.3 ms for a 512 KiB object, against ~0.5 ms of
transfer), so reading sequentially caps a series retrieve far below the network's speed.
:func:`read_ahead` keeps up to *window* whole objects in flight in worker threads; objects
larger than *whole_limit* are streamed in their turn instead, so memory stays bounded by
``window * whole_limit``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from pacs_api.storage.base import ObjectStore

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
