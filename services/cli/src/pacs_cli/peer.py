"""A DICOM peer on the command line (``AET@HOST:PORT``) and associations to it.

Every association this package opens sets ``TCP_NODELAY`` on its socket (``TESTING.md``) and
tells apart a peer that cannot be reached from one that rejects or aborts the association, so
the verbs can say which.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from pacs_common.dimse import open_association, validate_ae_title
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext

#: Seconds to wait for the TCP connection, the association answer and each DIMSE message.
CONNECT_TIMEOUT = 10.0
NETWORK_TIMEOUT = 60.0
#: PS3.8 §9.3.2.2: at most 128 presentation contexts in an A-ASSOCIATE-RQ.
MAX_CONTEXTS = 128


@dataclass(frozen=True)
class Peer:
    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_peer(value: str) -> Peer:
    """``AET@HOST:PORT`` (an IPv6 host in brackets: ``AET@[::1]:104``)."""
    ae_title, at, address = value.partition("@")
    host, colon, port_text = address.rpartition(":")
    if not at or not colon or not host:
        raise ValueError(f"{value!r} is not AET@HOST:PORT")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{port_text!r} is not a TCP port (1-65535)")
    return Peer(validate_ae_title(ae_title), host, int(port_text))


@contextmanager
def association(
    peer: Peer, calling_ae: str, contexts: Sequence[PresentationContext]
) -> Iterator[Association]:
    """An established association with *contexts* proposed, released (and the AE shut down)
    afterwards; :class:`AssociationFailed` when none is established."""
    ae = AE(ae_title=calling_ae)
    ae.connection_timeout = CONNECT_TIMEOUT
    ae.acse_timeout = CONNECT_TIMEOUT
    ae.network_timeout = NETWORK_TIMEOUT
    try:
        assoc = open_association(ae, peer.ae_title, peer.host, peer.port, contexts)
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()
    finally:
        ae.shutdown()
