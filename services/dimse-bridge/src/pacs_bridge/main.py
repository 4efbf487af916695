"""The bridge's entry point: :func:`create_bridge` builds the pynetdicom AE.

Every event the bridge answers is bound in one table, :func:`handlers`; each handler is thin:
check the peer's permission, hand the request to the module that turns it into DICOMweb calls
(:mod:`pacs_bridge.store`, :mod:`pacs_bridge.find`, :mod:`pacs_bridge.retrieve`), return the
DIMSE status. The handlers read the allow-list and the known nodes through the live
configuration (:mod:`pacs_bridge.live`), which :meth:`Bridge.reload` swaps; the listening port
speaks DICOM TLS when configured (:mod:`pacs_bridge.tls`). Beside the AE run store-and-forward
routing (:mod:`pacs_bridge.routing`, when routes are configured) and the HTTP status API
(:mod:`pacs_bridge.admin`).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
from pacs_common import statuses
from pacs_common.audit_outbox import AuditSender, OutboxAudit
from pacs_common.audit_writer import AuditWriter
from pacs_common.auth.authenticator import Authenticator
from pacs_common.changefeed import ChangeFeedClient
from pacs_common.client import DicomWebClient
from pacs_common.observability.metrics import Metrics
from pacs_common.observability.requestid import request_id_hooks
from pydicom.dataset import Dataset
from pydicom.uid import AllTransferSyntaxes, ExplicitVRLittleEndian
from pynetdicom import (
    AE,
    DEFAULT_TRANSFER_SYNTAXES,
    AllStoragePresentationContexts,
    _config,
    evt,
)
from pynetdicom.events import Event, EventHandlerType
from pynetdicom.transport import ThreadedAssociationServer

from pacs_bridge.access import permitted
from pacs_bridge.admin import AdminServer, create_admin_app
from pacs_bridge.audit import AuditTap
from pacs_bridge.errors import status_dataset
from pacs_bridge.find.handler import FindResponse, find_matches
from pacs_bridge.live import Live, LiveConfig, ReloadResult, live_config, reload
from pacs_bridge.network import set_poll_interval, set_tcp_nodelay
from pacs_bridge.observability import BridgeMetrics, operation
from pacs_bridge.retrieve.get import get_instances
from pacs_bridge.retrieve.move import MoveResponse, move_instances, refuse_move
from pacs_bridge.retrieve.suboperations import SubOperation, refused
from pacs_bridge.routing.queue import Backoff, Queue
from pacs_bridge.routing.router import Router, RoutingConfig
from pacs_bridge.routing.tables import audit_outbox
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
        yield from refuse_move(event, config.destinations, status, config.settings.poll_interval)
        return
    yield from move_instances(
        event,
        dicomweb,
        config.destinations,
        config.settings.find_page_size,
        config.settings.poll_interval,
    )


def handlers(
    live: Live, dicomweb: DicomWebClient, metrics: BridgeMetrics, audit: AuditTap
) -> list[EventHandlerType]:
    """The handlers table: every event the bridge answers, with the arguments bound; each
    association request and operation runs under a request id of its own (:func:`operation`),
    what is answered is counted (:class:`BridgeMetrics`) and audited (:class:`AuditTap`, which
    also notes what each request names)."""
    return [
        (evt.EVT_CONN_OPEN, set_tcp_nodelay),
        (evt.EVT_CONN_OPEN, set_poll_interval, [live.current.settings.poll_interval]),
        (evt.EVT_REQUESTED, operation(handle_requested), [live]),
        (evt.EVT_C_ECHO, operation(handle_echo), [live]),
        (evt.EVT_C_STORE, operation(audit.request(handle_store)), [live, dicomweb]),
        (evt.EVT_C_FIND, operation(audit.request(handle_find)), [live, dicomweb]),
        (evt.EVT_C_GET, operation(audit.request(handle_get)), [live, dicomweb]),
        (evt.EVT_C_MOVE, operation(audit.request(handle_move)), [live, dicomweb]),
        *metrics.handlers(),
        *audit.handlers(),
    ]


# -- application ---------------------------------------------------------------------------


def routing_config(config: LiveConfig) -> RoutingConfig:
    """The routing part of the live configuration, as the router reads it at every step."""
    settings = config.settings
    return RoutingConfig(
        routes=settings.routes,
        destinations=config.destinations,
        poll_interval=settings.routing_poll_interval,
        page_size=settings.routing_page_size,
        batch_size=settings.routing_batch_size,
        backoff=Backoff(settings.routing_retry_initial, settings.routing_retry_max),
        keep_settled=settings.routing_keep_settled,
    )


@dataclass
class Bridge:
    """The configured AE, its DICOMweb client, its live configuration, its router and status
    API and, once started, its server; *load* builds the settings again for :meth:`reload`."""

    settings: Settings
    ae: AE
    http: httpx.Client
    live: Live
    load: Callable[[], Settings]
    evt_handlers: list[EventHandlerType]
    queue: Queue
    router: Router
    admin: AdminServer
    audit: AuditSender
    audit_writer: AuditWriter
    tls: ssl.SSLContext | None = None
    server: ThreadedAssociationServer | None = None
    _closed: bool = field(default=False, repr=False)

    def start(self) -> ThreadedAssociationServer:
        """Listen on the configured address in background threads (over TLS when
        configured); serve the status API; route when routes are configured (now or by a
        later reload)."""
        server = self.ae.start_server(
            (self.settings.host, self.settings.port),
            block=False,
            evt_handlers=self.evt_handlers,
            ssl_context=self.tls,
        )
        assert server is not None  # block=False returns the server
        self.server = server
        self.admin.start()
        self.audit.start()
        self.live.subscribe(self._start_routing)
        self._start_routing(self.live.current)
        log.info(
            "DIMSE bridge %s listening on %s:%d%s, storing to %s",
            self.settings.ae_title,
            self.settings.host,
            self.server.server_address[1],
            " (TLS)" if self.tls else "",
            self.settings.dicomweb_url,
        )
        return server

    def _start_routing(self, config: LiveConfig) -> None:
        if config.settings.routes:
            self.router.start()

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

    @property
    def admin_url(self) -> str:
        """The root URL of the status API."""
        return f"http://{self.settings.admin_host}:{self.admin.port}"

    def close(self) -> None:
        """Stop routing and listening, end the associations, close the connections."""
        if self._closed:
            return
        self._closed = True
        self.router.stop()
        self.admin.stop()
        if self.server is not None:
            self.server.shutdown()
            self.server = None
        self.ae.shutdown()
        self.audit_writer.close()  # after the associations ended: their records in the outbox
        self.audit.stop()  # ... and then to the API
        self.audit_writer.stream.close()
        self.http.close()
        self.queue.engine.dispose()

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
        event_hooks=request_id_hooks(),  # X-Request-ID of the operation in hand
    )
    # the bridge's credentials at the API (read, write and audit scopes), on every call
    token = settings.dicomweb_token.get_secret_value() if settings.dicomweb_token else None
    dicomweb = DicomWebClient(http, settings.dicomweb_url, token=token)
    # Instances sent from files (routing) go out as stored, streamed, never decoded.
    _config.STORE_SEND_CHUNKED_DATASET = True
    queue = Queue.open(settings.database_url)
    metrics = BridgeMetrics(Metrics(), queue)
    # the records go to the stream at once, then to the outbox by group commit; the sender
    # takes the outbox every audit_interval: one POST /audit for many records
    audit = OutboxAudit(queue.engine, audit_outbox, http, settings, token=token)
    assert settings.changefeed_url is not None  # derived by the settings validator
    feed = ChangeFeedClient(http, settings.changefeed_url, token=token)
    router = Router(
        lambda: routing_config(live.current), queue, feed, dicomweb, ae, metrics=metrics
    )
    admin = AdminServer(
        create_admin_app(
            lambda: live.current.settings,
            queue,
            router,
            metrics.metrics,
            authenticator=Authenticator.from_settings(settings),
        ),
        settings.admin_host,
        settings.admin_port,
    )
    return Bridge(
        settings,
        ae,
        http,
        live,
        load,
        handlers(live, dicomweb, metrics, AuditTap(audit.writer)),
        queue,
        router,
        admin,
        audit.sender,
        audit.writer,
        tls,
    )
