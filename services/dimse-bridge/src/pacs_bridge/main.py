"""The bridge's entry point: :func:`create_bridge` builds the pynetdicom AE.

Every event the bridge answers is bound in one table, :func:`handlers`; each handler is thin:
check the peer's permission, hand the request to the module that turns it into DICOMweb calls
(:mod:`pacs_bridge.store`, :mod:`pacs_bridge.find`, :mod:`pacs_bridge.retrieve`), return the
DIMSE status.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from pacs_common import statuses
from pacs_common.client import DicomWebClient
from pydicom.dataset import Dataset
from pydicom.uid import AllTransferSyntaxes, ExplicitVRLittleEndian
from pynetdicom import AE, DEFAULT_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.events import Event, EventHandlerType
from pynetdicom.transport import ThreadedAssociationServer

from pacs_bridge.access import AccessPolicy, permitted
from pacs_bridge.errors import status_dataset
from pacs_bridge.find.handler import FindResponse, find_matches
from pacs_bridge.network import set_poll_interval, set_tcp_nodelay
from pacs_bridge.retrieve.get import get_instances
from pacs_bridge.retrieve.move import MoveResponse, move_instances, refuse_move
from pacs_bridge.retrieve.suboperations import SubOperation, refused
from pacs_bridge.settings import Node, Permission, Settings
from pacs_bridge.sop_classes import (
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_GET,
    PATIENT_ROOT_MOVE,
    STUDY_ROOT_FIND,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
    VERIFICATION,
)
from pacs_bridge.store import store_instance

log = logging.getLogger(__name__)

#: Storage accepts every transfer syntax pydicom knows: the uncompressed ones, deflate, JPEG,
#: JPEG-LS, JPEG 2000, HTJ2K, RLE and the video syntaxes; the bridge never decodes pixel data.
#: pynetdicom accepts the first of these the requestor proposed: Explicit VR Little Endian
#: comes first, the syntax instances are most often stored in, so that C-GET sub-operations
#: send them as stored instead of decoding them to encode them in Implicit VR (PS3.5 §A.2).
STORAGE_TRANSFER_SYNTAXES = [
    str(uid) for uid in sorted(AllTransferSyntaxes, key=lambda uid: uid != ExplicitVRLittleEndian)
]
#: Verification, C-FIND, C-GET and C-MOVE data sets are encoded by pynetdicom: the
#: uncompressed syntaxes.
QUERY_TRANSFER_SYNTAXES = list(DEFAULT_TRANSFER_SYNTAXES)


# -- handlers ------------------------------------------------------------------------------


def handle_echo(event: Event, policy: AccessPolicy) -> int:
    """C-ECHO (PS3.7 §9.1.5): success for a permitted peer."""
    if not permitted(event, Permission.ECHO, policy):
        return statuses.NOT_AUTHORIZED
    return statuses.SUCCESS


def handle_store(event: Event, policy: AccessPolicy, dicomweb: DicomWebClient) -> Dataset:
    """C-STORE (PS3.4 Annex B): success once the API has stored the instance."""
    if not permitted(event, Permission.STORE, policy):
        return status_dataset(statuses.NOT_AUTHORIZED, "no store permission")
    return store_instance(event, dicomweb)


def handle_find(
    event: Event, policy: AccessPolicy, dicomweb: DicomWebClient, page_size: int
) -> Iterator[FindResponse]:
    """C-FIND (PS3.4 C.4.1): one pending response per QIDO-RS match, then success."""
    if not permitted(event, Permission.FIND, policy):
        yield status_dataset(statuses.NOT_AUTHORIZED, "no find permission"), None
        return
    yield from find_matches(event, dicomweb, page_size)


def handle_get(
    event: Event, policy: AccessPolicy, dicomweb: DicomWebClient, page_size: int
) -> Iterator[int | SubOperation]:
    """C-GET (PS3.4 C.4.3): the matches sent back as C-STORE sub-operations on the same
    association."""
    if not permitted(event, Permission.GET, policy):
        yield from refused(status_dataset(statuses.NOT_AUTHORIZED, "no get permission"))
        return
    yield from get_instances(event, dicomweb, page_size)


def handle_move(
    event: Event,
    policy: AccessPolicy,
    dicomweb: DicomWebClient,
    nodes: dict[str, Node],
    page_size: int,
    poll_interval: float,
) -> Iterator[MoveResponse]:
    """C-MOVE (PS3.4 C.4.2): the matches sent to a known node on a new association."""
    if not permitted(event, Permission.MOVE, policy):
        status = status_dataset(statuses.NOT_AUTHORIZED, "no move permission")
        yield from refuse_move(event, nodes, status, poll_interval)
        return
    yield from move_instances(event, dicomweb, nodes, page_size, poll_interval)


def handlers(
    settings: Settings, policy: AccessPolicy, dicomweb: DicomWebClient
) -> list[EventHandlerType]:
    """The handlers table: every event the bridge answers, with the arguments bound."""
    return [
        (evt.EVT_CONN_OPEN, set_tcp_nodelay),
        (evt.EVT_CONN_OPEN, set_poll_interval, [settings.poll_interval]),
        (evt.EVT_REQUESTED, policy.handle_requested),
        (evt.EVT_C_ECHO, handle_echo, [policy]),
        (evt.EVT_C_STORE, handle_store, [policy, dicomweb]),
        (evt.EVT_C_FIND, handle_find, [policy, dicomweb, settings.find_page_size]),
        (evt.EVT_C_GET, handle_get, [policy, dicomweb, settings.find_page_size]),
        (
            evt.EVT_C_MOVE,
            handle_move,
            [policy, dicomweb, settings.nodes, settings.find_page_size, settings.poll_interval],
        ),
    ]


# -- application ---------------------------------------------------------------------------


@dataclass
class Bridge:
    """The configured AE, its DICOMweb client and, once started, its server."""

    settings: Settings
    ae: AE
    http: httpx.Client
    evt_handlers: list[EventHandlerType]
    server: ThreadedAssociationServer | None = None

    def start(self) -> ThreadedAssociationServer:
        """Listen on the configured address in background threads."""
        server = self.ae.start_server(
            (self.settings.host, self.settings.port), block=False, evt_handlers=self.evt_handlers
        )
        assert server is not None  # block=False returns the server
        self.server = server
        log.info(
            "DIMSE bridge %s listening on %s:%d, storing to %s",
            self.settings.ae_title,
            self.settings.host,
            self.server.server_address[1],
            self.settings.dicomweb_url,
        )
        return server

    @property
    def port(self) -> int:
        """The port listened on (the configured one, or the one picked for port 0)."""
        if self.server is None:
            return self.settings.port
        port: int = self.server.server_address[1]
        return port

    def close(self) -> None:
        """Stop listening, end the associations, close the HTTP connections."""
        if self.server is not None:
            self.server.shutdown()
            self.server = None
        self.ae.shutdown()
        self.http.close()

    def __enter__(self) -> Bridge:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def create_bridge(settings: Settings | None = None) -> Bridge:
    """Build the bridge: validated settings, the AE and its contexts, the DICOMweb client."""
    settings = settings or Settings()
    ae = AE(ae_title=settings.ae_title)
    ae.maximum_pdu_size = settings.max_pdu
    ae.maximum_associations = settings.max_associations
    ae.network_timeout = settings.network_timeout
    ae.acse_timeout = settings.acse_timeout
    ae.dimse_timeout = settings.dimse_timeout
    ae.connection_timeout = settings.connection_timeout
    ae.add_supported_context(VERIFICATION, QUERY_TRANSFER_SYNTAXES)
    # Storage in both roles: the bridge is the SCP of C-STORE, and the SCU of the C-GET
    # sub-operations when the requestor selects the SCP role (PS3.7 D.3.3.4, PS3.4 C.4.3.1.2).
    for context in AllStoragePresentationContexts:
        if context.abstract_syntax is not None:
            ae.add_supported_context(
                context.abstract_syntax, STORAGE_TRANSFER_SYNTAXES, scu_role=True, scp_role=True
            )
    for model in (
        PATIENT_ROOT_FIND,
        STUDY_ROOT_FIND,
        PATIENT_ROOT_GET,
        STUDY_ROOT_GET,
        PATIENT_ROOT_MOVE,
        STUDY_ROOT_MOVE,
    ):
        ae.add_supported_context(model, QUERY_TRANSFER_SYNTAXES)
    http = httpx.Client(
        timeout=settings.http_timeout,
        limits=httpx.Limits(max_connections=settings.max_associations),
    )
    dicomweb = DicomWebClient(http, settings.dicomweb_url)
    policy = AccessPolicy(settings)
    return Bridge(settings, ae, http, handlers(settings, policy, dicomweb))
