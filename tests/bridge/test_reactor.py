"""The checkpoint that pauses pynetdicom's association reactor before a C-MOVE sub-operation
(pacs_bridge.reactor): it says "paused" only once a thread waits at it after it was
cleared, never from a stale earlier wait."""

from __future__ import annotations

import threading

from pacs_bridge.reactor import Checkpoint


def test_checkpoint_open_wait_not_counted_as_pause() -> None:
    """A new checkpoint is set: the reactor passes it without pausing."""
    checkpoint = Checkpoint()
    assert checkpoint.is_set()
    assert checkpoint.wait()
    assert not checkpoint.waited.is_set()


def test_checkpoint_waited_after_clear_blocks_until_set() -> None:
    """After clear(), waited is set only when a thread waits at the checkpoint, which holds it
    until set(); the next clear() forgets that wait."""
    checkpoint = Checkpoint()
    checkpoint.clear()
    assert not checkpoint.waited.is_set()
    reactor = threading.Thread(target=checkpoint.wait)
    reactor.start()
    assert checkpoint.waited.wait(timeout=30)
    assert reactor.is_alive()
    checkpoint.set()
    reactor.join(timeout=30)
    assert not reactor.is_alive()
    checkpoint.clear()
    assert not checkpoint.waited.is_set()
