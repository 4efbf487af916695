"""DIMSE helpers shared by the bridge and the command line: AE titles, socket options and
opening associations with a precise reason when that fails.

pynetdicom leaves Nagle's algorithm on: a DIMSE message and its data set then wait for the
peer's delayed ACK, and C-FIND round trips take tens of milliseconds instead of a few, C-STORE
drops to about 24 instances/s (``TESTING.md``). Every connection, accepted or opened, gets
``TCP_NODELAY`` when it opens.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import AssociationSocket

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


def _shutdown_socket(self: AssociationSocket) -> None:
    """Shut down and close the socket, closing it even when shutdown fails.

    pynetdicom 3.0's own version skips ``close()`` when ``shutdown()`` raises, which it always
    does on a socket whose connection was refused: each unreachable peer leaked a socket
    (a ResourceWarning, an error under the tests' ``filterwarnings = error``). Replaced for
    every user of this module; remove when pynetdicom closes the socket itself.
    """
    sock = self.socket
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


AssociationSocket._shutdown_socket = _shutdown_socket  # type: ignore[method-assign]


class AssociationFailed(Exception):
    """The peer could not be reached, or rejected or aborted the association."""


@dataclass
class _Connection:
    opened: bool = False

    then: Callable[[Event], None] | None = None

    def on_open(self, event: Event) -> None:
        self.opened = True
        set_tcp_nodelay(event)
        if self.then is not None:
            self.then(event)


def open_association(
    ae: AE,
    ae_title: str,
    host: str,
    port: int,
    contexts: Sequence[PresentationContext],
    *,
    on_open: Callable[[Event], None] | None = None,
    **options: Any,
) -> Association:
    """An established association from *ae* to the peer *ae_title* at *host*:*port* with
    *contexts* proposed (TCP_NODELAY on its socket, then *on_open* when the connection opens;
    *options* go to ``AE.associate``), else
    :class:`AssociationFailed` saying whether the peer could not be reached (no TCP
    connection), rejected the association (with the A-ASSOCIATE-RJ result, source and reason,
    PS3.8 §7.1.1.9) or aborted it."""
    connection = _Connection(then=on_open)
    assoc = ae.associate(
        host,
        port,
        ae_title=ae_title,
        contexts=list(contexts),
        evt_handlers=[(evt.EVT_CONN_OPEN, connection.on_open)],
        **options,
    )
    if assoc.is_established:
        return assoc
    peer = f"{ae_title}@{host}:{port}"
    if assoc.is_rejected:
        rejection = assoc.acceptor.primitive
        if rejection is None:
            raise AssociationFailed(f"{peer} rejected the association")
        raise AssociationFailed(
            f"{peer} rejected the association: {rejection.reason_str}"
            f" ({rejection.result_str}, source: {rejection.source_str})"
        )
    if not connection.opened:
        raise AssociationFailed(f"{peer} cannot be reached (no TCP connection to {host}:{port})")
    raise AssociationFailed(f"{peer} aborted the association (or did not answer it)")
