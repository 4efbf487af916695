"""Pausing pynetdicom's association reactor before each C-STORE the bridge sends on an
association it requested (C-MOVE sub-operations, store-and-forward routing).

pynetdicom (3.0) lets ``send_c_store`` take the DIMSE response off the queue by pausing the
association's reactor thread, which otherwise takes every incoming message itself: the sender
clears ``_reactor_checkpoint`` and waits until ``_is_paused`` is true. But the reactor sets
``_is_paused`` before each wait and clears it only once it runs again, so right after one
sub-operation (which sets the checkpoint again) the flag still says "paused" while the reactor
is about to resume: the next ``send_c_store`` goes ahead, the reactor takes its C-STORE
response ("Received unexpected C-STORE service message"), and the sub-operation waits for the
DIMSE timeout and fails. This happens on a loaded machine and more often the faster
sub-operations follow each other (pynetdicom issue 875 reports the same for C-FIND).

:func:`install_checkpoint` gives the association a checkpoint that records when the reactor
waits at it after it was cleared; :func:`pause_reactor` clears it and waits for that, so the
reactor is blocked before the request is sent. The C-GET SCP needs none of this: its
sub-operations are sent from the reactor thread itself.
"""

from __future__ import annotations

import threading

from pynetdicom.association import Association
from pynetdicom.events import Event

#: Seconds between checks that the association is still there while waiting for its reactor.
_ALIVE_CHECK = 0.05


class Checkpoint(threading.Event):
    """An event that tells whether a thread has waited at it since it was last cleared."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.waited = threading.Event()
        self.set()  # pynetdicom's reactor runs until a sender clears it

    def clear(self) -> None:
        with self._lock:
            super().clear()
            self.waited.clear()

    def wait(self, timeout: float | None = None) -> bool:
        with self._lock:
            if not self.is_set():
                self.waited.set()
        return super().wait(timeout)


def install_checkpoint(event: Event) -> None:
    """``EVT_CONN_OPEN`` of an association the bridge requests: its reactor pauses at a
    :class:`Checkpoint` (set when the connection opens, before the reactor runs)."""
    event.assoc._reactor_checkpoint = Checkpoint()


def pause_reactor(assoc: Association) -> None:
    """Block *assoc*'s reactor thread at its checkpoint (the sender unpauses it when its
    response arrived); returns early when the association ends meanwhile."""
    checkpoint = assoc._reactor_checkpoint
    if not isinstance(checkpoint, Checkpoint) or threading.current_thread() is assoc:
        return
    checkpoint.clear()
    while not checkpoint.waited.wait(_ALIVE_CHECK):
        if not assoc.is_alive() or not assoc.is_established:
            return
