"""Socket options of the bridge's connections.

pynetdicom leaves Nagle's algorithm on: a DIMSE message and its data set then wait for the
peer's delayed ACK, and C-FIND round trips take tens of milliseconds instead of a few
(``TESTING.md``). Every connection, accepted or opened, gets ``TCP_NODELAY`` when it opens.
"""

from __future__ import annotations

import socket

from pacs_common.dimse import set_tcp_nodelay as set_tcp_nodelay


def has_tcp_nodelay(sock: socket.socket) -> bool:
    """True when *sock* has Nagle's algorithm disabled."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
