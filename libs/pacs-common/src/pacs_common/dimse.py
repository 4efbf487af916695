"""DIMSE helpers shared by the bridge and the command line: AE titles and socket options.

pynetdicom leaves Nagle's algorithm on: a DIMSE message and its data set then wait for the
peer's delayed ACK, and C-FIND round trips take tens of milliseconds instead of a few, C-STORE
drops to about 24 instances/s (``TESTING.md``). Every connection, accepted or opened, gets
``TCP_NODELAY`` when it opens.
"""

from __future__ import annotations

import socket

from pynetdicom.events import Event

#: PS3.5 table 6.2-1: an AE title is 1 to 16 characters, no backslash, no control characters.
AE_TITLE_MAX_LENGTH = 16


def validate_ae_title(value: str) -> str:
    """An AE title without its padding (PS3.5 table 6.2-1, VR AE), else ``ValueError``."""
    title = value.strip(" ")
    if not title:
        raise ValueError("an AE title needs at least one non-space character")
    if len(title) > AE_TITLE_MAX_LENGTH:
        raise ValueError(f"AE title {title!r} is longer than {AE_TITLE_MAX_LENGTH} characters")
    if "\\" in title or not title.isascii() or not title.isprintable():
        raise ValueError(
            f"AE title {title!r} may hold printable ASCII only, without backslash (PS3.5 6.2)"
        )
    return title


def set_tcp_nodelay(event: Event) -> None:
    """``EVT_CONN_OPEN``: disable Nagle's algorithm on the association's TCP socket."""
    transport = event.assoc.dul.socket
    sock = transport.socket if transport is not None else None
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
