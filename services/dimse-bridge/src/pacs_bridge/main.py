"""The bridge's entry point: :func:`create_bridge` builds the pynetdicom AE.

Every event the bridge answers is bound in one table, :func:`handlers`; each handler is thin:
check the peer's permission, hand the request to the module that turns it into DICOMweb calls
(:mod:`pacs_bridge.store`, :mod:`pacs_bridge.find`, :mod:`pacs_bridge.retrieve`), return the
DIMSE status. The handlers read the allow-list and the known nodes through the live
configuration (:mod:`pacs_bridge.live`), which :meth:`Bridge.reload` swaps; the listening port
speaks DICOM TLS when configured (:mod:`pacs_bridge.tls`).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
from pacs_common import statuses
from pacs_common.client import DicomWebClient
from pydicom.dataset import Dataset
from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE, DEFAULT_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.events import Event, EventHandlerType
from pynetdicom.transport import ThreadedAssociationServer

from pacs_bridge.access import permitted
from pacs_bridge.errors import status_dataset
from pacs_bridge.find.handler import FindResponse, find_matches
from pacs_bridge.live import Live, ReloadResult, live_config, reload
from pacs_bridge.network import set_tcp_nodelay
from pacs_bridge.retrieve.get import get_instances
from pacs_bridge.retrieve.move import MoveResponse, move_instances, refuse_move
from pacs_bridge.retrieve.suboperations import SubOperation, refused
from pacs_bridge.settings import Permission, Settings
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
from pacs_bridge.tls import server_context

log = logging.getLogger(__name__)

#: Storage accepts every transfer syntax pydicom knows: the uncompressed ones, deflate, JPEG,
#: JPEG-LS, JPEG 2000, HTJ2K, RLE and the video syntaxes; the bridge never decodes pixel data.
STORAGE_TRANSFER_SYNTAXES = [str(uid) for uid in AllTransferSyntaxes]
#: Verification, C-FIND, C-GET and C-MOVE data sets are encoded by pynetdicom: the
#: uncompressed syntaxes.
QUERY_TRANSFER_SYNTAXES = list(DEFAULT_TRANSFER_SYNTAXES)


# -- handlers ------------------------------------------------------------------------------
# Each handler reads the live configuration once (:mod:`pacs_bridge.live`): a reload swaps it
# between requests.


def handle_requested(event: Event, live: Live) -> None:
    """``EVT_REQUESTED``: reject an association the access policy does not admit."""
    live.current.policy.handle_requested(event)


def handle_echo(event: Event, live: Live) -> int:
    """C-ECHO (PS3.7 §9.1.5): success for a permitted peer."""
    if not permitted(event, Permission.ECHO, live.current.policy):
        return statuses.NOT_AUTHORIZED
    return statuses.SUCCESS


def handle_store(event: Event, live: Live, dicomweb: DicomWebClient) -> Dataset:
    """C-STORE (PS3.4 Annex B): success once the API has stored the instance."""
    if not permitted(event, Permission.STORE, live.current.policy):
        return status_dataset(statuses.NOT_AUTHORIZED, "no store permission")
    return store_instance(event, dicomweb)


def handle_find(event: Event, live: Live, dicomweb: DicomWebClient) -> Iterator[FindResponse]:
    """C-FIND (PS3.4 C.4.1): one pending response per QIDO-RS match, then success."""
    config = live.current
    if not permitted(event, Permission.FIND, config.policy):
        yield status_dataset(statuses.NOT_AUTHORIZED, "no find permission"), None
        return
    yield from find_matches(event, dicomweb, config.settings.find_page_size)


def handle_get(event: Event, live: Live, dicomweb: DicomWebClient) -> Iterator[int | SubOperation]:
    """C-GET (PS3.4 C.4.3): the matches sent back as C-STORE sub-operations on the same
    association."""
    config = live.current
    if not permitted(event, Permission.GET, config.policy):
        yield from refused(status_dataset(statuses.NOT_AUTHORIZED, "no get permission"))
        return
    yield from get_instances(event, dicomweb, config.settings.find_page_size)


def handle_move(event: Event, live: Live, dicomweb: DicomWebClient) -> Iterator[MoveResponse]:
    """C-MOVE (PS3.4 C.4.2): the matches sent to a known node on a new association."""
    config = live.current
    if not permitted(event, Permission.MOVE, config.policy):
        status = status_dataset(statuses.NOT_AUTHORIZED, "no move permission")
        yield from refuse_move(event, config.destinations, status)
        return
    yield from move_instances(event, dicomweb, config.destinations, config.settings.find_page_size)


def handlers(live: Live, dicomweb: DicomWebClient) -> list[EventHandlerType]:
    """The handlers table: every event the bridge answers, with the arguments bound."""
    return [
        (evt.EVT_CONN_OPEN, set_tcp_nodelay),
        (evt.EVT_REQUESTED, handle_requested, [live]),
        (evt.EVT_C_ECHO, handle_echo, [live]),
        (evt.EVT_C_STORE, handle_store, [live, dicomweb]),
        (evt.EVT_C_FIND, handle_find, [live, dicomweb]),
        (evt.EVT_C_GET, handle_get, [live, dicomweb]),
        (evt.EVT_C_MOVE, handle_move, [live, dicomweb]),
    ]


# -- application ---------------------------------------------------------------------------


@dataclass
class Bridge:
    """The configured AE, its DICOMweb client, its live configuration and, once started, its
    server; *load* builds the settings again for :meth:`reload`."""

    settings: Settings
    ae: AE
    http: httpx.Client
    live: Live
    load: Callable[[], Settings]
    evt_handlers: list[EventHandlerType]
    tls: ssl.SSLContext | None = None
    server: ThreadedAssociationServer | None = None

    def start(self) -> ThreadedAssociationServer:
        """Listen on the configured address in background threads (over TLS when
        configured)."""
        server = self.ae.start_server(
            (self.settings.host, self.settings.port),
            block=False,
            evt_handlers=self.evt_handlers,
            ssl_context=self.tls,
        )
        assert server is not None  # block=False returns the server
        self.server = server
        log.info(
            "DIMSE bridge %s listening on %s:%d%s, storing to %s",
            self.settings.ae_title,
            self.settings.host,
            self.server.server_address[1],
            " (TLS)" if self.tls else "",
            self.settings.dicomweb_url,
        )
        return server

    def reload(self) -> ReloadResult:
        """Re-read the configuration and swap in its reloadable parts, or keep the one in use
        and log why (:func:`pacs_bridge.live.reload`); open associations stay open."""
        return reload(self.live, self.load)

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


def create_bridge(
    settings: Settings | None = None, *, load: Callable[[], Settings] = Settings
) -> Bridge:
    """Build the bridge: validated settings (*settings*, else ``load()``), the AE and its
    contexts, the TLS contexts, the DICOMweb client. A reload calls *load* again.
    :class:`~pacs_bridge.settings.ConfigError` when a TLS file cannot be used."""
    settings = settings or load()
    tls = server_context(settings)
    live = Live(live_config(settings))
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
    return Bridge(settings, ae, http, live, load, handlers(live, dicomweb), tls)
