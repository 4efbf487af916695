"""Socket options and polling of the bridge's connections.

pynetdicom leaves Nagle's algorithm on: a DIMSE message and its data set then wait for the
peer's delayed ACK, and C-FIND round trips take tens of milliseconds instead of a few
(``TESTING.md``). Every connection, accepted or opened, gets ``TCP_NODELAY`` when it opens.

pynetdicom's DUL reactor (the thread that reads PDUs and sends the queued ones) polls: when a
pass finds nothing to do it sleeps 1 ms, so each message waits up to that long on both ways of
every exchange. With a pynetdicom SCP that answers C-STORE without doing anything, storescu
sends about 320 CT slices/s with the 1 ms default and about 580/s with 0.2 ms on the reference
machine (``bench/dimse.py``); an idle open association then costs about 9 % of a core instead
of 3 %. :func:`set_poll_interval` sets the bridge's value on every connection when it opens.
"""

from __future__ import annotations

import socket

from pacs_common.dimse import set_tcp_nodelay as set_tcp_nodelay
from pynetdicom.events import Event


def has_tcp_nodelay(sock: socket.socket) -> bool:
    """True when *sock* has Nagle's algorithm disabled."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def set_poll_interval(event: Event, seconds: float) -> None:
    """``EVT_CONN_OPEN``: the idle sleep of the association's DUL reactor, in seconds.

    pynetdicom (3.0) reads ``DULServiceProvider._run_loop_delay`` on every pass of the reactor
    and offers no public setting for it.
    """
    event.assoc.dul._run_loop_delay = seconds


def poll_interval(dul: object) -> float:
    """The idle sleep of a DUL reactor (``Association.dul``), in seconds."""
    delay: float = getattr(dul, "_run_loop_delay")  # noqa: B009 - a private attribute
    return delay
