"""Socket options of DIMSE connections, shared by the bridge and the command line.

pynetdicom leaves Nagle's algorithm on: a DIMSE message and its data set then wait for the
peer's delayed ACK, and C-FIND round trips take tens of milliseconds instead of a few, C-STORE
drops to about 24 instances/s (``TESTING.md``). Every connection, accepted or opened, gets
``TCP_NODELAY`` when it opens.
"""

from __future__ import annotations

import socket

from pynetdicom.events import Event


def set_tcp_nodelay(event: Event) -> None:
    """``EVT_CONN_OPEN``: disable Nagle's algorithm on the association's TCP socket."""
    transport = event.assoc.dul.socket
    sock = transport.socket if transport is not None else None
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
