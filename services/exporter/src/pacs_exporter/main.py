"""The exporter's entry point: :func:`create_app` builds the FastAPI application and its
workers.

Routes are listed in one place, :mod:`pacs_exporter.routes`; the jobs run in
:mod:`pacs_exporter.worker` threads (``settings.workers`` per process), started and stopped
with the application's lifespan; every access is audited (:mod:`pacs_exporter.audit`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from pacs_common.audit_http import AuditMiddleware
from pacs_common.audit_outbox import OutboxAudit
from pacs_common.auth.authenticator import Authenticator
from pacs_common.client import DicomWebClient
from pacs_common.observability.metrics import Metrics
from pacs_common.observability.requestid import request_id_hooks
from pacs_common.storage import open_store

from pacs_exporter import observability
from pacs_exporter.audit import http_records
from pacs_exporter.cors import install_cors
from pacs_exporter.jobs.queue import JobQueue
from pacs_exporter.jobs.tables import audit_outbox
from pacs_exporter.problems import install_error_handlers
from pacs_exporter.routes import include_routes
from pacs_exporter.settings import Settings
from pacs_exporter.worker import Observer, Workers

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, observer: Observer | None = None) -> FastAPI:
    """Build the application: validate settings, migrate the jobs' database, open the store
    and the API client; the workers start with the application and stop with it.
    *observer* sees every progress point of the workers (see :data:`worker.Observer`)."""
    settings = settings or Settings()
    queue = JobQueue.open(settings.database_url)
    store = open_store(settings)
    # each job's calls to the API carry its id as X-Request-ID (pacs_exporter.observability)
    http = httpx.Client(timeout=settings.dicomweb_timeout, event_hooks=request_id_hooks())
    token = settings.dicomweb_token.get_secret_value() if settings.dicomweb_token else None
    client = DicomWebClient(http, settings.dicomweb_url, token=token)
    metrics = observability.ExporterMetrics(Metrics(), queue)
    workers = Workers(queue, store, client, settings, observer=observer, metrics=metrics)
    # the audit records: stream, then the outbox in the jobs' database, then POST /audit
    audit = OutboxAudit(queue.engine, audit_outbox, http, settings, token=token)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        audit.start()
        workers.start()
        try:
            yield
        finally:
            workers.stop()
            audit.close()  # after the last request: its record stored, then delivered
            http.close()
            store.close()
            queue.close()

    app = FastAPI(
        title="pacs-cloud mesh exporter",
        version="0.1.0",
        summary="CT series to watertight STL / PLY / OBJ meshes in patient millimetres, as "
        "jobs with progress.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.queue = queue
    app.state.store = store
    app.state.workers = workers
    app.state.audit = audit
    # bearer API keys and JWTs (pacs_common.auth); None: no authentication, loopback only
    app.state.authenticator = Authenticator.from_settings(settings)
    install_error_handlers(app)
    install_cors(app, settings)
    observability.install(app, metrics)  # X-Request-ID, access log, GET /metrics
    include_routes(app)
    # outermost: sees every answer
    app.add_middleware(AuditMiddleware, records=http_records, append=audit.writer.append)
    return app
