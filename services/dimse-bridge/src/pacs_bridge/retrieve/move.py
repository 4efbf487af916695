"""C-MOVE SCP (PS3.4 C.4.2): the instances go to a known node on a new association.

The Move Destination (0000,0600) is looked up among the configured nodes by AE title; an
unknown one is answered 0xA801 "Move destination unknown" (PS3.4 C.4.2.1.5). pynetdicom's
``EVT_C_MOVE`` protocol takes the destination address first, then the count and the
sub-operations (:mod:`.suboperations`); pynetdicom opens the association with the destination's
AE title as called AE title and answers 0xA801 as well when the destination refuses it or
cannot be reached (the connection, ACSE and DIMSE timeouts of the bridge bound the wait).

The association proposes, for each SOP class to send, the uncompressed transfer syntaxes in one
presentation context and the common compressed ones in one context each, up to PS3.8's 128
contexts: instances are sent as stored, so one stored in a syntax the destination does not
accept fails its sub-operation. A refused request (no permission, invalid identifier) is
answered after the destination association too, as pynetdicom asks for the destination first.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pacs_common.client import DicomWebClient
from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import build_context, evt
from pynetdicom.events import Event
from pynetdicom.presentation import PresentationContext

from pacs_bridge.network import set_poll_interval, set_tcp_nodelay
from pacs_bridge.retrieve.resolve import Match
from pacs_bridge.retrieve.stored import send_as_stored_on_open
from pacs_bridge.retrieve.suboperations import SubOperation, prepare, refused, sub_operations
from pacs_bridge.settings import Node
from pacs_bridge.sop_classes import VERIFICATION

log = logging.getLogger(__name__)

#: PS3.8 §9.3.2.2: an A-ASSOCIATE-RQ holds at most 128 presentation contexts (odd IDs 1-255).
MAX_CONTEXTS = 128
UNCOMPRESSED = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
)
COMPRESSED = (
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
)

#: What pynetdicom's C-MOVE handler yields: the destination, the count, the sub-operations.
MoveResponse = tuple[str | None, int | None] | tuple[str, int, dict[str, Any]] | int | SubOperation


@dataclass(frozen=True)
class Destination:
    """A known node and, for a TLS node, the context the bridge connects to it with."""

    node: Node
    tls: ssl.SSLContext | None = None


def move_instances(
    event: Event,
    dicomweb: DicomWebClient,
    destinations: Mapping[str, Destination],
    page_size: int,
    poll_interval: float,
) -> Iterator[MoveResponse]:
    """The responses to one C-MOVE request, in pynetdicom's ``EVT_C_MOVE`` protocol."""
    destination = _destination(event, destinations)
    if destination is None:
        yield None, None
        return
    retrieval = prepare(event, dicomweb, page_size)
    matches = [] if isinstance(retrieval, Dataset) else retrieval.matches
    node = destination.node
    yield node.host, node.port, _association_options(matches, destination, poll_interval)
    if isinstance(retrieval, Dataset):
        yield from refused(retrieval)
        return
    yield from sub_operations(event, dicomweb, retrieval)


def refuse_move(
    event: Event,
    destinations: Mapping[str, Destination],
    status: Dataset,
    poll_interval: float,
) -> Iterator[MoveResponse]:
    """The answer to a C-MOVE refused before its search (*status*), or 0xA801 for an unknown
    destination."""
    destination = _destination(event, destinations)
    if destination is None:
        yield None, None
        return
    node = destination.node
    yield node.host, node.port, _association_options([], destination, poll_interval)
    yield from refused(status)


def _destination(event: Event, destinations: Mapping[str, Destination]) -> Destination | None:
    title = str(event.move_destination or "").strip()
    destination = destinations.get(title)
    if destination is None:
        log.warning("C-MOVE to unknown destination %r refused", title)
    return destination


def _association_options(
    matches: list[Match], destination: Destination, poll_interval: float
) -> dict[str, Any]:
    """``AE.associate`` arguments of the destination association (TCP_NODELAY on its socket,
    the bridge's poll interval, TLS for a TLS node); without instances to send (a refused
    request) it proposes Verification only."""
    sop_classes = list(dict.fromkeys(match.sop_class for match in matches))
    options: dict[str, Any] = {
        "contexts": storage_contexts(sop_classes) or [build_context(VERIFICATION)],
        "evt_handlers": [
            (evt.EVT_CONN_OPEN, set_tcp_nodelay),
            (evt.EVT_CONN_OPEN, set_poll_interval, [poll_interval]),
            (evt.EVT_CONN_OPEN, send_as_stored_on_open),
        ],
    }
    if destination.tls is not None:
        options["tls_args"] = (destination.tls, destination.node.host)
    return options


def storage_contexts(sop_classes: list[str]) -> list[PresentationContext]:
    """Contexts for *sop_classes*: the uncompressed one of every class first, then each
    compressed syntax per class while PS3.8's limit allows."""
    contexts = [build_context(uid, list(UNCOMPRESSED)) for uid in sop_classes]
    for syntax in COMPRESSED:
        for uid in sop_classes:
            if len(contexts) == MAX_CONTEXTS:
                return contexts
            contexts.append(build_context(uid, syntax))
    return contexts
